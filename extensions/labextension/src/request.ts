/**
 * The one way the front end calls its server extension (`gpuhub/api/v1/...` on the page's
 * Jupyter server), through JupyterLab's `ServerConnection` (the server's base URL, its
 * token and XSRF cookie). Every failure is an `ApiError`: the status and the sentence the
 * extension, or the gpuhub service behind it, answered in the API's error shape
 * (`{status, error, message, field}`, see extensions/api-types).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type { ErrorBody, ErrorCode } from '../../api-types/src';

/** A refused or failed call: `status` 0 when the server did not answer at all. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field: string | null = null,
    readonly code: ErrorCode | null = null
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** Whether the server extension itself is missing (its routes answer 404 with no code). */
  get missing(): boolean {
    return this.status === 404 && this.code === null;
  }

  /** The error of a non-2xx `response` whose JSON body was `data` (null: none). */
  static of(response: Response, data: unknown): ApiError {
    const body = (data && typeof data === 'object' ? data : {}) as Partial<ErrorBody>;
    const said =
      typeof body.message === 'string' && body.message
        ? body.message
        : `${response.status} ${response.statusText}`.trim();
    return new ApiError(
      response.status,
      said,
      typeof body.field === 'string' ? body.field : null,
      typeof body.error === 'string' ? body.error : null
    );
  }
}

/** What a request sends besides its method and route. */
export interface IRequestOptions {
  /** Query parameters. */
  query?: Record<string, string>;
  /** A body, sent as JSON. */
  body?: unknown;
  /** More headers (e.g. `Idempotency-Key`). */
  headers?: Record<string, string>;
  /** The server to ask; the page's own by default. */
  settings?: ServerConnection.ISettings;
}

/** `method` the extension's `route` (e.g. `jobs/12`); its decoded JSON answer (null when
 * empty), or an `ApiError`. */
export async function requestAPI<T>(
  method: string,
  route: string,
  options: IRequestOptions = {}
): Promise<T> {
  const settings = options.settings ?? ServerConnection.makeSettings();
  const url =
    URLExt.join(settings.baseUrl, 'gpuhub', 'api', 'v1', route) +
    URLExt.objectToQueryString(options.query ?? {});
  const headers: Record<string, string> = { ...options.headers };
  const init: RequestInit = { method, headers };
  if (options.body !== undefined) {
    init.body = JSON.stringify(options.body);
    headers['Content-Type'] = 'application/json';
  }
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (err) {
    throw new ApiError(0, `The server did not answer: ${(err as Error).message ?? err}`);
  }
  let data: unknown = null;
  const text = await response.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    throw ApiError.of(response, data);
  }
  return data as T;
}
