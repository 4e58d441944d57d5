import { describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff';
import { rng } from './testUtil';

describe('backoffDelay', () => {
  it('grows exponentially within jitter bounds', () => {
    const rand = rng(7);
    for (let attempt = 0; attempt < 8; attempt++) {
      const ceiling = Math.min(30_000, 500 * 2 ** attempt);
      for (let i = 0; i < 50; i++) {
        const d = backoffDelay(attempt, { random: rand });
        expect(d).toBeGreaterThanOrEqual(ceiling / 2);
        expect(d).toBeLessThanOrEqual(ceiling);
      }
    }
  });

  it('is capped', () => {
    expect(backoffDelay(50, { random: () => 1 })).toBe(30_000);
    expect(backoffDelay(1000, { random: () => 0, maxMs: 10_000 })).toBe(5_000);
  });

  it('spreads clients apart', () => {
    const rand = rng(3);
    const delays = new Set(Array.from({ length: 20 }, () => backoffDelay(4, { random: rand })));
    expect(delays.size).toBeGreaterThan(10);
  });
});
