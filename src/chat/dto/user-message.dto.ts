import { Type } from 'class-transformer';
import { IsArray, IsBoolean, IsInt, IsNumber, IsOptional, IsString, IsUUID, Length, Max, MaxLength, Min, ValidateNested } from 'class-validator';

/** Per-chat settings a message may carry; `null` resets a field to the server default. */
export class ChatOptionsDto {
  @IsOptional()
  @IsString()
  @Length(1, 128)
  model?: string | null;

  @IsOptional()
  @IsBoolean()
  thinking?: boolean | null;

  @IsOptional()
  @IsNumber()
  @Min(0)
  @Max(2)
  temperature?: number | null;

  @IsOptional()
  @IsInt()
  @Min(1)
  max_tokens?: number | null;

  @IsOptional()
  @IsString()
  @MaxLength(32000)
  system_prompt?: string | null;
}

export class UserMessageDto {
  @IsOptional()
  @IsString()
  id?: string;

  @IsString()
  @Length(1, 32000)
  content: string;

  @IsOptional()
  @IsUUID('all')
  chat_id?: string;

  @IsOptional()
  @ValidateNested()
  @Type(() => ChatOptionsDto)
  options?: ChatOptionsDto;

  @IsOptional()
  @IsArray()
  @IsString({ each: true })
  attachments?: string[];

  /** (addition) Edit: the id of the user message of `chat_id` whose place this one takes, as a new branch. */
  @IsOptional()
  @IsUUID('all')
  edit_of?: string;
}
