import { Logger } from '@nestjs/common';
import { json, type NextFunction, type Request, type Response } from 'express';
import { AppError } from '../common/app-error';

const logger = new Logger('ImportBody');

/**
 * The JSON body parser of `POST /api/chats/import`, registered before the app-wide one (whose
 * 100 KB limit an export outgrows): at most IMPORT_MAX_BYTES. A bigger body is read and dropped and
 * answered 413 `payload_too_large`, with one log line and no stack. (The function's name must not be
 * `jsonParser`: Nest adds its own parser only when no middleware of that name is there.)
 */
export function importBody(limit: number) {
  const parse = json({ limit });
  return function importBodyParser(req: Request, res: Response, next: NextFunction): void {
    parse(req, res, (error?: unknown) => {
      if ((error as { type?: string } | undefined)?.type !== 'entity.too.large') return next(error);
      const length = (error as { length?: number }).length;
      logger.warn(`import refused: body of ${length ?? 'more than ' + limit} bytes is over IMPORT_MAX_BYTES (${limit})`);
      next(new AppError('payload_too_large', `the import is over ${limit} bytes (IMPORT_MAX_BYTES)`));
    });
  };
}
