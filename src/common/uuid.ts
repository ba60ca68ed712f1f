import { AppError } from './app-error';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A route id that is not a UUID names nothing: `not_found`, like an unknown one. */
export function assertUuid(id: string, what = 'chat'): void {
  if (!UUID.test(id)) throw new AppError('not_found', `no such ${what}`);
}
