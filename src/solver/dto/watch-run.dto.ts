import { IsInt, IsOptional, IsString, IsUUID, Min } from 'class-validator';

/** `solver_watch`: follow a run from this socket (after a reconnect, a reload, another tab). */
export class WatchRunDto {
  @IsOptional()
  @IsString()
  id?: string;

  @IsUUID('all')
  run_id: string;

  /** The last `seq` of reasoning/solution this viewer already has (0: none). */
  @IsOptional()
  @IsInt()
  @Min(0)
  after_seq?: number;
}
