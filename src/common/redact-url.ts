/** The URL without its password, for messages and logs (database and Redis URLs). */
export function redactUrl(url: string): string {
  return url.replace(/(\/\/[^:/@]*):[^@]*@/, '$1:***@');
}
