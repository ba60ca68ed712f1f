import { IsBoolean, IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { ISSUE_URL } from '../issue-url';

export class SolveDto {
  @IsOptional()
  @IsString()
  id?: string;

  @IsString()
  @MaxLength(2048)
  @Matches(ISSUE_URL, { message: 'issue_url must be https://github.com/OWNER/REPO/issues/N' })
  issue_url: string;

  @IsOptional()
  @IsBoolean()
  open_pr?: boolean;
}
