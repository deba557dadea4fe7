import { RingmasterError } from '../lib/errors.ts';

// Paths are checked, never rewritten: ringmaster decides on exactly the path the backend will
// see, so any form that two parsers could read differently is refused outright.

/** `rawQuery`: the query string as received, without its '?'. `segments` are split when first read. */
export type CheckedPath = { readonly path: string; readonly segments: string[]; readonly query: QueryParams; readonly rawQuery: string };

class Checked implements CheckedPath {
  readonly path: string;
  readonly query: QueryParams;
  readonly rawQuery: string;
  #segments: string[] | undefined;
  constructor(path: string, rawQuery: string, segments: string[] | undefined) {
    this.path = path;
    this.rawQuery = rawQuery;
    this.query = new LazyQuery(rawQuery);
    this.#segments = segments;
  }
  get segments(): string[] {
    return (this.#segments ??= this.path.split('/').slice(1));
  }
}

/** The query string's parameters; read-only, and parsed only when first asked for. */
export type QueryParams = Pick<URLSearchParams, 'get'>;

class LazyQuery implements QueryParams {
  #raw: string;
  #parsed: URLSearchParams | undefined;
  constructor(raw: string) {
    this.#raw = raw;
  }
  #params(): URLSearchParams {
    return (this.#parsed ??= new URLSearchParams(this.#raw));
  }
  get(name: string): string | null {
    return this.#raw === '' ? null : this.#params().get(name);
  }
}

const encodedSeparator = /%(2f|5c|00)/i;
const controlChar = /[\u0000-\u001f\u007f]/;

export function checkRequestTarget(target: string | undefined): CheckedPath {
  if (!target || !target.startsWith('/')) throw new RingmasterError('RM_PATH_INVALID', 'request target must be an absolute path');
  const q = target.indexOf('?');
  const rawPath = q === -1 ? target : target.slice(0, q);
  const rawQuery = q === -1 ? '' : target.slice(q + 1);
  // Every agent request passes here: a path without '%' is its own decoding.
  const encoded = rawPath.includes('%');
  if (encoded && encodedSeparator.test(rawPath)) throw new RingmasterError('RM_PATH_INVALID', 'encoded "/", "\\" or NUL in the path is refused');
  if (rawPath.includes('\\')) throw new RingmasterError('RM_PATH_INVALID', 'backslash in the path is refused');
  if (rawPath.includes('//')) throw new RingmasterError('RM_PATH_INVALID', 'empty path segment ("//") is refused');
  let decoded = rawPath;
  if (encoded) {
    try {
      decoded = decodeURIComponent(rawPath);
    } catch {
      throw new RingmasterError('RM_PATH_INVALID', 'malformed percent-encoding in the path');
    }
  }
  if (controlChar.test(decoded)) throw new RingmasterError('RM_PATH_INVALID', 'control character in the path is refused');
  // Most paths hold no '/.' at all, and are not split here.
  const segments = decoded.includes('/.') ? decoded.split('/').slice(1) : undefined;
  if (segments?.some((s) => s === '.' || s === '..')) throw new RingmasterError('RM_PATH_INVALID', 'dot segment in the path is refused');
  return new Checked(decoded, rawQuery, segments);
}
