import { Controller, HttpStatus, ParseFilePipeBuilder, Post, UploadedFile, UseInterceptors } from '@nestjs/common';
import { FileInterceptor } from '@nestjs/platform-express';
import { randomUUID } from 'node:crypto';
import { AuthUser } from '../auth/auth-user';
import { CurrentUser } from '../auth/auth.decorators';
import { AppError } from '../common/app-error';
import { FilesRepository } from '../storage/files.repository';
import { ChatLimits } from './chat-limits';

export const MAX_FILE_BYTES = 1_048_576;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Text attachments: UTF-8 without NUL, at most 1 MiB each, FILE_QUOTA_BYTES in all per user. */
@Controller('api/files')
export class FilesController {
  constructor(
    private readonly files: FilesRepository,
    private readonly limits: ChatLimits,
  ) {}

  @Post()
  @UseInterceptors(FileInterceptor('file', { limits: { fileSize: MAX_FILE_BYTES, files: 1 } }))
  async upload(
    @CurrentUser() user: AuthUser,
    @UploadedFile(new ParseFilePipeBuilder().build({ errorHttpStatusCode: HttpStatus.BAD_REQUEST, fileIsRequired: true }))
    file: Express.Multer.File,
  ) {
    let text: string;
    try {
      text = utf8.decode(file.buffer);
    } catch {
      throw new AppError('unsupported_media', 'only UTF-8 text files can be attached');
    }
    if (text.includes('\0')) throw new AppError('unsupported_media', 'only text files can be attached (this one has NUL bytes)');
    await this.limits.fileQuota(user.id, file.size);
    const name = (file.originalname || 'file.txt').replace(/[\\/\r\n\0]/g, '_').slice(0, 255);
    const row = await this.files.insertFile({ id: randomUUID(), user_id: user.id, name, size: file.size, content: text });
    return { id: row.id, name: row.name, size: row.size };
  }
}
