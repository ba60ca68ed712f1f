import { IsOptional, IsString, IsUUID, ValidateIf } from 'class-validator';

/** `stop` names a chat generation (`message_id`) or a Solver run (`run_id`). */
export class StopDto {
  @IsOptional()
  @IsString()
  id?: string;

  @ValidateIf((o: StopDto) => o.run_id === undefined)
  @IsUUID('all')
  message_id?: string;

  @ValidateIf((o: StopDto) => o.message_id === undefined)
  @IsUUID('all')
  run_id?: string;
}
