import { Transform } from 'class-transformer';
import { IsIn, IsString, Length, Matches } from 'class-validator';

export const MIN_PASSWORD_LENGTH = 10;

export class CredentialsDto {
  @IsString()
  @Length(3, 32)
  @Matches(/^[A-Za-z0-9_.-]+$/, { message: 'username may use letters, digits, _ . -' })
  username: string;

  @IsString()
  @Length(MIN_PASSWORD_LENGTH, 256)
  password: string;
}

/** Login checks no policy on the password: a wrong one is simply wrong. */
export class LoginDto {
  @IsString()
  @Length(1, 64)
  username: string;

  @IsString()
  @Length(1, 256)
  password: string;
}

export class PasswordChangeDto {
  @IsString()
  @Length(1, 256)
  current_password: string;

  @IsString()
  @Length(MIN_PASSWORD_LENGTH, 256)
  new_password: string;
}

/** The admin's sign-up switch: `open` is `true` or `false` (a form sends strings, JSON may send booleans). */
export class SignupSwitchDto {
  @Transform(({ value }: { value: unknown }) => String(value))
  @IsIn(['true', 'false'])
  open: 'true' | 'false';
}
