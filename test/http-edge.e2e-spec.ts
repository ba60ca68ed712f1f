import request from 'supertest';
import { type RunningApp, startApp } from './support/app';
import { upgradeStatus } from './support/ws-client';

/** The HTTP edge as a DNS-rebinding page and a reverse proxy meet it: Host names, TRUST_PROXY, HSTS. */
describe('the HTTP edge (e2e)', () => {
  const servers: RunningApp[] = [];
  const start = async (env: Record<string, string>) => {
    const server = await startApp(env);
    servers.push(server);
    return server;
  };
  afterAll(async () => {
    for (const server of servers) await server.close();
  });

  it('answers 421 to a rebinding Host on HTTP and on the upgrade (AUTH_MODE=none), writing nothing', async () => {
    const server = await start({ AUTH_MODE: 'none' });
    const port = new URL(server.url).port;
    const rebind = 'rebind.example:3000';
    const listed = await request(server.url).get('/api/chats').set('Host', rebind).expect(421);
    expect(listed.text).toMatch(/^Misdirected request/);
    await request(server.url).get('/chat').set('Host', rebind).expect(421);
    const exported = { format: 'chat-export', version: 1, title: 'planted', messages: [{ role: 'user', content: 'hi' }] };
    await request(server.url).post('/api/chats/import').set('Host', rebind).send(exported).expect(421);
    expect(await upgradeStatus(server.wsUrl, { host: rebind })).toBe(421);
    expect(await upgradeStatus(server.wsUrl, { host: `evil.localhost.example:${port}` })).toBe(421);
    // The loopback names still work, and nothing was written.
    expect((await request(server.url).get('/api/chats').expect(200)).body.chats).toEqual([]);
    await request(server.url).get('/api/chats').set('Host', `localhost:${port}`).expect(200);
    await request(server.url).get('/health').set('Host', `[::1]:${port}`).expect(200);
    expect(await upgradeStatus(server.wsUrl, { host: `localhost:${port}` })).toBe(101);
  });

  it('answers the names of ALLOWED_HOSTS and of ALLOWED_ORIGINS, with or without port; `*` answers any', async () => {
    const server = await start({ AUTH_MODE: 'none', ALLOWED_HOSTS: 'chat.example, 10.0.0.5:8080', ALLOWED_ORIGINS: 'https://app.example' });
    for (const host of ['chat.example', 'CHAT.example:8443', '10.0.0.5:8080', 'app.example']) {
      await request(server.url).get('/health').set('Host', host).expect(200);
    }
    for (const host of ['127.0.0.1', '10.0.0.5:9090', 'rebind.example']) await request(server.url).get('/health').set('Host', host).expect(421);
    expect(await upgradeStatus(server.wsUrl, { host: 'chat.example', origin: 'http://chat.example' })).toBe(101);

    const any = await start({ AUTH_MODE: 'none', ALLOWED_HOSTS: '*' });
    await request(any.url).get('/health').set('Host', 'rebind.example:3000').expect(200);
  });

  it('behind a proxy (TRUST_PROXY): Secure cookie and HSTS from X-Forwarded-Proto; never on plain http', async () => {
    const proxied = await start({ AUTH_MODE: 'local', TRUST_PROXY: 'loopback' });
    const viaHttps = await request(proxied.url)
      .post('/auth/signup')
      .set('X-Forwarded-Proto', 'https')
      .send({ username: 'alice', password: 'correct horse battery' })
      .expect(201);
    expect(String(viaHttps.headers['set-cookie'])).toMatch(/; Secure/);
    expect(viaHttps.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
    const viaHttp = await request(proxied.url)
      .post('/auth/login')
      .set('X-Forwarded-Proto', 'http')
      .send({ username: 'alice', password: 'correct horse battery' })
      .expect(200);
    expect(String(viaHttp.headers['set-cookie'])).not.toMatch(/Secure/);
    expect(viaHttp.headers['strict-transport-security']).toBeUndefined();

    // Without TRUST_PROXY the header is anyone's to send: it counts for nothing.
    const direct = await start({ AUTH_MODE: 'local' });
    const forged = await request(direct.url)
      .post('/auth/signup')
      .set('X-Forwarded-Proto', 'https')
      .send({ username: 'alice', password: 'correct horse battery' })
      .expect(201);
    expect(String(forged.headers['set-cookie'])).not.toMatch(/Secure/);
    expect(forged.headers['strict-transport-security']).toBeUndefined();
    expect((await request(direct.url).get('/login').expect(200)).headers['strict-transport-security']).toBeUndefined();
  });

  it('without TRUST_PROXY, X-Forwarded-For does not move a client to another address (limits hold)', async () => {
    const server = await start({ AUTH_MODE: 'local', SIGNUPS_PER_HOUR: '1' });
    await request(server.url)
      .post('/auth/signup')
      .set('X-Forwarded-For', '203.0.113.1')
      .send({ username: 'first', password: 'correct horse battery' })
      .expect(201);
    await request(server.url)
      .post('/auth/signup')
      .set('X-Forwarded-For', '203.0.113.2')
      .send({ username: 'second', password: 'correct horse battery' })
      .expect(429);
  });
});
