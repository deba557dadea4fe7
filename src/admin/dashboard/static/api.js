// Talks to /admin/v1 on the origin that served the page. The bearer token (admin.tokenFile) is
// kept in sessionStorage: it goes with this tab and is sent only as an Authorization header, which
// a page of another site cannot make the browser add. A browser holding an allowed client
// certificate needs no token.

const key = 'ringmaster.adminToken';

export class AuthNeeded extends Error {}
export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

export const token = {
  get: () => sessionStorage.getItem(key),
  set: (t) => sessionStorage.setItem(key, t),
  clear: () => sessionStorage.removeItem(key),
};

async function request(method, path, body) {
  const headers = { accept: 'application/json' };
  const t = token.get();
  if (t) headers.authorization = `Bearer ${t}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store', credentials: 'same-origin', redirect: 'error' });
  let parsed = null;
  try {
    parsed = await res.json();
  } catch {
    parsed = null;
  }
  if (res.status === 401) throw new AuthNeeded(parsed?.error?.message ?? 'authentication needed');
  if (!res.ok) throw new ApiError(res.status, parsed?.error?.code ?? 'RM_INTERNAL', parsed?.error?.message ?? `HTTP ${res.status}`, parsed);
  return parsed;
}

export const get = (path) => request('GET', path);
export const post = (path, body) => request('POST', path, body);

/** Like get, but a 503 RM_REPORTS_UNAVAILABLE gives null instead of an error. */
export async function getReports(path) {
  try {
    return await get(path);
  } catch (err) {
    if (err instanceof ApiError && err.code === 'RM_REPORTS_UNAVAILABLE') return null;
    throw err;
  }
}
