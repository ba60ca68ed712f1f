import { IsInt, IsOptional, IsString, IsUUID, Min } from 'class-validator';

export class ResumeDto {
  @IsOptional()
  @IsString()
  id?: string;

  @IsUUID('all')
  message_id: string;

  @IsInt()
  @Min(0)
  after_seq: number;
}

export class SubscribeDto {
  @IsOptional()
  @IsString()
  id?: string;

  @IsUUID('all')
  chat_id: string;
}

export class RegenerateDto {
  @IsOptional()
  @IsString()
  id?: string;

  @IsUUID('all')
  message_id: string;
}
