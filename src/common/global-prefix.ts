import { RequestMethod } from '@nestjs/common';
import type { ApplicationConfig } from '@nestjs/core';
import { isUnder, type MountPoint, normalizePath } from './mount';

type PrefixOptions = ReturnType<ApplicationConfig['getGlobalPrefixOptions']>;
type ExcludedRoute = NonNullable<PrefixOptions['exclude']>[number];

/** `-1` is how Nest spells "every method" in a mapped exclusion, beside `RequestMethod.ALL`. */
function coversGet(route: ExcludedRoute): boolean {
  const method = route.requestMethod as number;
  return method === RequestMethod.ALL || method === RequestMethod.GET || method === -1;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Makes `mount.basePath` the path our routes really get, once the host's `app.setGlobalPrefix(...)`
 * is final (called at init, before Nest registers routes):
 * - no global prefix, or our routes excluded from it by the host: `routePrefix` as given;
 * - a `routePrefix` that already starts with the global prefix (`'api/assistant'` under `'api'`):
 *   the host wrote the real path, so our routes are excluded from the global prefix (never
 *   `/api/api/assistant`);
 * - otherwise the global prefix, then `routePrefix` (`'api'` + `'/assistant'` = `/api/assistant`),
 *   as Nest puts it before every route.
 */
export function applyGlobalPrefix(mount: MountPoint, config: ApplicationConfig): void {
  const prefix = normalizePath(config.getGlobalPrefix());
  if (!prefix) return mount.resolveGlobalPrefix('', 'none');
  const options = config.getGlobalPrefixOptions();
  const exclude = options.exclude ?? [];
  // A page route every mode has, as Nest tests it: without the global prefix.
  const probe = `${mount.routePrefix}/chat`;
  if (exclude.some((route) => coversGet(route) && route.pathRegex.test(probe))) return mount.resolveGlobalPrefix(prefix, 'excluded');
  if (mount.routePrefix && isUnder(mount.routePrefix, prefix)) {
    const ours: ExcludedRoute = {
      path: `${mount.routePrefix}/{*path}`,
      requestMethod: RequestMethod.ALL,
      pathRegex: new RegExp(`^${escapeRegExp(mount.routePrefix)}(?:/.*)?$`),
    };
    config.setGlobalPrefixOptions({ ...options, exclude: [...exclude, ours] });
    return mount.resolveGlobalPrefix(prefix, 'excluded');
  }
  mount.resolveGlobalPrefix(prefix, 'applied');
}
