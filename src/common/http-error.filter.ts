import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger, Optional } from '@nestjs/common';
import type { Request, Response } from 'express';
import { AppError, ErrorCode } from './app-error';
import { MountPoint } from './mount';
import { PageRenderer } from './page-renderer';

const STATUS: Partial<Record<ErrorCode, number>> = {
  invalid_json: 400,
  invalid_message: 400,
  not_found: 404,
  rate_limited: 429,
  model_not_configured: 503,
  shutting_down: 503,
  unauthorized: 401,
  forbidden: 403,
  conflict: 409,
  unsupported_media: 415,
  payload_too_large: 413,
  upstream_auth: 502,
  upstream_quota: 502,
  upstream_rate_limited: 502,
  upstream_unavailable: 502,
  upstream_timeout: 504,
  upstream_interrupted: 502,
  upstream_bad_request: 502,
  upstream_bad_response: 502,
  limit_exceeded: 429,
  github_error: 502,
};

/**
 * Maps errors at the HTTP edge: JSON `{statusCode, error, message}` for the API, the 404 page for
 * pages a browser asked for.
 */
@Catch()
export class HttpErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger(HttpErrorFilter.name);

  /** Without a mount point (a bare `new HttpErrorFilter()`): the standalone server's paths. */
  constructor(
    @Optional() protected readonly mount: MountPoint = new MountPoint(),
    @Optional() protected readonly pages: PageRenderer = new PageRenderer(mount),
  ) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const response = http.getResponse<Response>();
    const request = http.getRequest<Request>();
    const { status, message } = this.describe(exception, request);
    if (response.headersSent) return;
    const api = this.mount.path('/api/');
    const wantsPage = request.method === 'GET' && !request.path.startsWith(api) && request.accepts(['json', 'html']) === 'html';
    const machineRoute = request.path.startsWith(api) || request.path === this.mount.path('/metrics');
    const login = this.mount.loginPath;
    if (status === 401 && request.method === 'GET' && !machineRoute && login) {
      // Pages send the browser to the login page; an htmx request is told to go there itself.
      if (request.get('HX-Request') === 'true') {
        response.status(401).set('HX-Redirect', login).json({ statusCode: 401, error: 'Unauthorized', message });
      } else {
        response.redirect(303, login);
      }
      return;
    }
    if (status === 401 && wantsPage && this.mount.pageScript) {
      // A token-based host: the browser's navigation carried no token; page.js asks again with it.
      this.pages.render(response, 'token_bootstrap', {}, { status: 401 });
      return;
    }
    if (wantsPage && status === 404) {
      this.pages.render(response, 'not_found', { message, pageTitle: 'Not found' }, { status: 404 });
      return;
    }
    response.status(status).json({ statusCode: status, error: reasonPhrase(status), message });
  }

  /** The HTTP status and the message a person may read (an unexpected error is logged, not shown). */
  protected describe(exception: unknown, request: Request): { status: number; message: string } {
    if (exception instanceof AppError) return { status: STATUS[exception.code] ?? 500, message: exception.message };
    if (exception instanceof HttpException) {
      const body = exception.getResponse();
      const text = typeof body === 'string' ? body : (body as { message?: unknown }).message;
      return { status: exception.getStatus(), message: Array.isArray(text) ? text.join('; ') : String(text ?? exception.message) };
    }
    const parser = exception as { status?: unknown; expose?: unknown; message?: unknown } | null;
    if (typeof parser?.status === 'number' && parser.status >= 400 && parser.status < 500 && parser.expose === true) {
      // The body parser refused the body (over its limit, not JSON): the client's mistake; one line, no stack.
      this.logger.warn(`${request.method} ${request.path}: ${parser.status} ${String(parser.message)}`);
      return { status: parser.status, message: String(parser.message) };
    }
    this.logger.error(`unhandled error on ${request.method} ${request.path}: ${(exception as Error)?.stack ?? exception}`);
    return { status: HttpStatus.INTERNAL_SERVER_ERROR, message: 'internal error' };
  }
}

function reasonPhrase(status: number): string {
  const name = HttpStatus[status] as string | undefined;
  if (!name) return 'Error';
  return name
    .toLowerCase()
    .split('_')
    .map((word) => word[0].toUpperCase() + word.slice(1))
    .join(' ');
}
