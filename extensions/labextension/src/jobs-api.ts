/**
 * Calls to the job routes of the jupyter_gpuhub server extension. Every failure is an
 * `ApiError` (see ./request) with the status and the sentence the extension (or the gpuhub
 * service behind it) answered; 404 on the routes themselves means the extension is missing.
 */
import { ServerConnection } from '@jupyterlab/services';

import { IDefinition, IJob, IJobLog, IJobRequest, IParametersReply } from './jobs-types';
import { requestAPI } from './request';

/** The job routes of the page's server. */
export class JobsAPI {
  constructor(settings?: ServerConnection.ISettings) {
    this._settings = settings ?? ServerConnection.makeSettings();
  }
  /** GET jobs/parameters?path=: the parameters cell and the dialog's defaults. */
  parameters(path: string): Promise<IParametersReply> {
    return this._call('GET', 'jobs/parameters', { path });
  }

  /** POST jobs: submit (or, with a schedule, create a recurring definition); the same
   * `idempotencyKey` on a repeat gets the job the first one made. */
  submit(body: IJobRequest, idempotencyKey?: string): Promise<IJob | IDefinition> {
    const headers: Record<string, string> = idempotencyKey
      ? { 'Idempotency-Key': idempotencyKey }
      : {};
    return this._call('POST', 'jobs', {}, body, headers);
  }

  /** GET jobs: my jobs, newest first. */
  async jobs(): Promise<IJob[]> {
    const reply = await this._call<{ jobs: IJob[] }>('GET', 'jobs', { limit: '100' });
    return reply.jobs ?? [];
  }

  /** GET jobs/{id} */
  job(id: number): Promise<IJob> {
    return this._call('GET', `jobs/${id}`);
  }

  /** DELETE jobs/{id}: cancel (answers once the job has stopped). */
  cancel(id: number): Promise<IJob> {
    return this._call('DELETE', `jobs/${id}`);
  }

  /** GET jobs/{id}/log from `offset`. */
  log(id: number, offset: number, limit = 65536): Promise<IJobLog> {
    return this._call('GET', `jobs/${id}/log`, {
      offset: String(offset),
      limit: String(limit)
    });
  }

  /** GET job-definitions: my recurring jobs. */
  async definitions(): Promise<IDefinition[]> {
    const reply = await this._call<{ definitions: IDefinition[] }>('GET', 'job-definitions');
    return reply.definitions ?? [];
  }

  /** DELETE job-definitions/{id} */
  async deleteDefinition(id: number): Promise<void> {
    await this._call('DELETE', `job-definitions/${id}`);
  }

  /** PATCH job-definitions/{id} */
  pauseDefinition(id: number, paused: boolean): Promise<IDefinition> {
    return this._call('PATCH', `job-definitions/${id}`, {}, { paused });
  }

  private _call<T>(
    method: string,
    route: string,
    query: Record<string, string> = {},
    body?: unknown,
    headers: Record<string, string> = {}
  ): Promise<T> {
    return requestAPI<T>(method, route, { query, body, headers, settings: this._settings });
  }

  private _settings: ServerConnection.ISettings;
}
