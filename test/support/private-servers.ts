/** The fault specs' private Redis and PostgreSQL live in bench/ (the scale bench starts them too). */
export { freePort, PrivatePostgres, PrivateRedis } from '../../bench/private-servers';
