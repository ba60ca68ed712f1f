// Loaded by the `postgres` Jest project: the helpers then hand out PostgreSQL databases.
process.env.TEST_DATABASE = 'postgres';
