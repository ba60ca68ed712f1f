import { Param, ParseUUIDPipe } from '@nestjs/common';
import { AppError } from './app-error';

/**
 * A route id that must be a UUID (`@UuidParam('uuid')`): one that is not names nothing, so it is
 * `not_found` ("no such chat"), like an unknown one, not a 400.
 */
export const UuidParam = (name: string, what = 'chat') =>
  Param(name, new ParseUUIDPipe({ exceptionFactory: () => new AppError('not_found', `no such ${what}`) }));
