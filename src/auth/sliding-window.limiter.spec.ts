import { SlidingWindowLimiter } from './sliding-window.limiter';

describe('SlidingWindowLimiter', () => {
  it('allows `limit` events per window and says when the next is allowed', () => {
    const limiter = new SlidingWindowLimiter(2, 1000);
    expect(limiter.consume('u', 0)).toBe(0);
    expect(limiter.consume('u', 100)).toBe(0);
    expect(limiter.consume('u', 200)).toBe(800);
    expect(limiter.consume('other', 200)).toBe(0);
    expect(limiter.consume('u', 1001)).toBe(0);
  });

  it('does not count refused attempts: hammering does not push the window out', () => {
    const limiter = new SlidingWindowLimiter(1, 1000);
    expect(limiter.consume('u', 0)).toBe(0);
    for (let t = 10; t < 1000; t += 10) expect(limiter.consume('u', t)).toBe(1000 - t);
    expect(limiter.consume('u', 1000)).toBe(0);
  });

  it('wait asks without counting: only consume moves the window', () => {
    const limiter = new SlidingWindowLimiter(2, 1000);
    for (let i = 0; i < 5; i++) expect(limiter.wait('u', 0)).toBe(0);
    limiter.consume('u', 0);
    limiter.consume('u', 100);
    expect(limiter.wait('u', 200)).toBe(800);
    limiter.reset('u');
    expect(limiter.wait('u', 200)).toBe(0);
  });

  it('is off with a limit of 0', () => {
    const limiter = new SlidingWindowLimiter(0, 1000);
    for (let i = 0; i < 100; i++) expect(limiter.consume('u', i)).toBe(0);
  });
});
