import { describe, expect, it } from 'vitest';
import { ApiError, errorFromResponse, fieldErrors } from './errors';

describe('errors', () => {
  it('parses the contract error body', async () => {
    const res = new Response(JSON.stringify({ error: { code: 'validation_failed', message: 'bad', fields: { email: 'no' } } }), { status: 400 });
    const err = await errorFromResponse(res);
    expect(err).toMatchObject({ status: 400, code: 'validation_failed', message: 'bad', fields: { email: 'no' } });
  });

  it('survives a body that is not JSON', async () => {
    const err = await errorFromResponse(new Response('<html>bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }));
    expect(err).toMatchObject({ status: 502, code: 'http_502', message: 'Bad Gateway' });
  });

  it('maps a conflict to the field its message names', () => {
    const taken = new ApiError(409, 'conflict', 'that username is already taken');
    expect(fieldErrors(taken, ['username', 'email'])).toEqual({ username: 'that username is already taken' });
    const email = new ApiError(409, 'conflict', 'that email address is already registered');
    expect(fieldErrors(email, ['username', 'email'])).toEqual({ email: 'that email address is already registered' });
    expect(fieldErrors(new ApiError(500, 'internal', 'username'), ['username'])).toEqual({});
  });
});
