import type { IncomingMessage } from 'node:http';
import { bearerToken } from './bearer-token';

const req = (headers: IncomingMessage['headers']) => ({ headers }) as IncomingMessage;

describe('bearerToken', () => {
  it('reads Authorization: Bearer, whatever the scheme case', () => {
    expect(bearerToken(req({ authorization: 'Bearer abc.def-ghi_j' }))).toBe('abc.def-ghi_j');
    expect(bearerToken(req({ authorization: 'bearer xyz' }))).toBe('xyz');
  });

  it("reads the page socket's bearer.<token> subprotocol, after chat-system", () => {
    expect(bearerToken(req({ 'sec-websocket-protocol': 'chat-system, bearer.eyJ.a-b_c' }))).toBe('eyJ.a-b_c');
  });

  it('gives nothing for other schemes, other subprotocols, or an empty token', () => {
    expect(bearerToken(req({ authorization: 'Basic dXNlcjpwdw==' }))).toBeUndefined();
    expect(bearerToken(req({ 'sec-websocket-protocol': 'chat-system, graphql-ws' }))).toBeUndefined();
    expect(bearerToken(req({ 'sec-websocket-protocol': 'bearer.' }))).toBeUndefined();
    expect(bearerToken(req({ authorization: 'Bearer ' }))).toBeUndefined();
    expect(bearerToken(req({}))).toBeUndefined();
  });
});
