/**
 * The REST client of the console: the gpuhub service's API under the service prefix,
 * authenticated by JupyterHub's OAuth cookie. Requests that change something carry the
 * `_xsrf` cookie (set by the service's OAuth callback) as the X-XSRFToken header, which
 * JupyterHub's HubOAuth checks for cookie-authenticated POST, PUT and DELETE.
 */

import type { ErrorBody, ErrorCode } from '../../api-types/src';

type Params = Record<string, string | number | undefined>;

/** A refusal of the service (its `ErrorBody`): `message` is its sentence, `field` the
 * field it names, `code` its kind of error; status 0 when the service did not answer. */
export class ApiError extends Error {
  status: number;
  field?: string;
  code: ErrorCode | null;

  constructor(status: number, message: string, field?: string, code: ErrorCode | null = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.field = field;
    this.code = code;
  }

  /** The error of a non-2xx answer with body `data`: the API's own words where it gave
   * an `ErrorBody`, else what `what` got. */
  static of(response: Response, data: unknown, what: string): ApiError {
    const body = (data && typeof data === 'object' ? data : {}) as Partial<ErrorBody>;
    const message =
      typeof body.message === 'string' && body.message
        ? body.message
        : `${what} failed: ${response.status} ${response.statusText}`;
    return new ApiError(
      response.status,
      message,
      typeof body.field === 'string' ? body.field : undefined,
      typeof body.error === 'string' ? body.error : null
    );
  }
}

/** The value of cookie `name`, or '' when there is none. */
export function cookie(name: string): string {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) {
      return decodeURIComponent(v.join('='));
    }
  }
  return '';
}

/** Calls of the gpuhub REST API (`base` e.g. "/services/gpuhub/api/v1"). */
export class Api {
  readonly base: string;

  constructor(base: string) {
    this.base = base.replace(/\/+$/, '');
  }

  /** GET `path` (e.g. "/leases") with query `params` (undefined ones left out). */
  get<T>(path: string, params?: Params): Promise<T> {
    return this.request<T>('GET', path, params);
  }

  /** POST a JSON body. */
  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('POST', path, undefined, body);
  }

  /** PUT a JSON body. */
  put<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('PUT', path, undefined, body);
  }

  /** DELETE `path` with query `params`. */
  delete<T>(path: string, params?: Params): Promise<T> {
    return this.request<T>('DELETE', path, params);
  }

  /** The URL of `path` with `params`. */
  url(path: string, params?: Params): string {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(params ?? {})) {
      if (v !== undefined) {
        query.append(k, String(v));
      }
    }
    const q = query.toString();
    return this.base + path + (q ? '?' + q : '');
  }

  private async request<T>(
    method: string,
    path: string,
    params?: Params,
    body?: unknown
  ): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    const xsrf = cookie('_xsrf');
    if (xsrf) {
      headers['X-XSRFToken'] = xsrf;
    }
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
    }
    let response: Response;
    try {
      response = await fetch(this.url(path, params), {
        method,
        headers,
        credentials: 'same-origin',
        body: body === undefined ? undefined : JSON.stringify(body)
      });
    } catch (e) {
      throw new ApiError(0, `the gpuhub service did not answer (${String(e)}); try again`);
    }
    const text = await response.text();
    let data: unknown = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      throw ApiError.of(response, data, `${method} ${path}`);
    }
    return data as T;
  }
}
