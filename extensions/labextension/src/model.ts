/**
 * The GPU model: one Lumino `Poll` per browser tab reading the jupyter_gpuhub server
 * extension. It backs off on errors, stands by while the tab is hidden, and keeps the
 * last minutes of samples for the charts.
 */
import { ServerConnection } from '@jupyterlab/services';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { ApiError, requestAPI } from './request';
import { IDevice, IDevicesReply, IIdleWarning, ILease, ILeaseReply, IMe, ISample } from './types';

/** What the model knows: loading, the GPUs, or why there are none. */
export type GpuState =
  | 'loading' // nothing answered yet
  | 'ok' // the server holds a lease and sampled its devices
  | 'no-gpu' // the server's profile has no GPU (CPU only): nothing is missing
  | 'no-lease' // the server extension answers, but the server holds no GPU lease
  | 'missing' // the server extension is not installed or not enabled (404)
  | 'error'; // the server extension answered with an error, or the server is unreachable

/** Samples older than this are dropped from the charts. */
const KEEP_S = 10 * 60;

/** The quota (`me`) changes slowly: ask for it every this many ticks. */
const ME_EVERY = 10;

/** The GPUs, lease and quota of this server, refreshed by a polite poll. */
export class GpuModel {
  /** Start polling every `refreshRate` milliseconds. */
  constructor(options: GpuModel.IOptions) {
    this._settings = options.serverSettings ?? ServerConnection.makeSettings();
    this._poll = new Poll({
      auto: true,
      factory: () => this._tick(),
      frequency: { interval: options.refreshRate, backoff: true, max: 5 * 60 * 1000 },
      name: '@gpuhub/jupyterlab-gpuhub:GpuModel',
      standby: 'when-hidden'
    });
  }

  /** Emitted after every poll, successful or not. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** What the model knows now. */
  get state(): GpuState {
    return this._state;
  }

  /** A sentence about the last error (state 'error' or 'missing'), or the extension's own. */
  get message(): string | null {
    return this._message;
  }

  /** The leased devices, each with the history kept for the charts. */
  get devices(): IDevice[] {
    return this._devices;
  }

  /** Whether the devices are simulated. */
  get simulated(): boolean {
    return this._simulated;
  }

  /** The server's spawn profile, when the server extension knows it. */
  get profile(): string | null {
    return this._profile;
  }

  /** The lease this server holds, or null. */
  get lease(): ILease | null {
    return this._lease;
  }

  /** GPU-idle reclaim's warning on this server's lease, or null. */
  get idleWarning(): IIdleWarning | null {
    return this._lease?.idle_warning ?? null;
  }

  /**
   * Keep this server from GPU-idle reclaim for `seconds` (one of the warning's
   * `can_keep_for`); rejects with the service's sentence when it refuses.
   */
  async keep(seconds: number): Promise<void> {
    const reply = await requestAPI<ILeaseReply>('POST', 'lease/keep', {
      body: { seconds },
      settings: this._settings
    });
    this._lease = reply.lease;
    this._changed.emit();
  }

  /** The user's quotas and leases from the gpuhub service, or null when not known. */
  get me(): IMe | null {
    return this._me;
  }

  /** Why `me` is not known (the service did not answer), or null. */
  get meError(): string | null {
    return this._meError;
  }

  /** Why the lease is not known (the gpuhub service did not answer), or null. */
  get leaseError(): string | null {
    return this._leaseError;
  }

  /** Change the refresh rate (milliseconds). */
  set refreshRate(ms: number) {
    this._poll.frequency = { ...this._poll.frequency, interval: ms };
  }

  /** Ask again now (e.g. when the panel opens). */
  refresh(): Promise<void> {
    return this._poll.refresh();
  }

  /** Whether the model is disposed. */
  get isDisposed(): boolean {
    return this._poll.isDisposed;
  }

  /** Stop polling. */
  dispose(): void {
    this._poll.dispose();
    Signal.clearData(this);
  }

  private async _tick(): Promise<void> {
    try {
      const since = this._lastT;
      const devices = await this._get<IDevicesReply>(
        'devices',
        since === null ? {} : { since: String(since) }
      );
      this._mergeDevices(devices);
      if (devices.lease_id === null) {
        this._lease = null;
      } else if (
        !this._lease ||
        this._lease.id !== devices.lease_id ||
        this._ticks % ME_EVERY === 0
      ) {
        await this._fetchLease();
      }
      if (this._ticks % ME_EVERY === 0) {
        await this._fetchMe();
      }
      this._ticks++;
      this._message = devices.error;
      this._profile = devices.profile ?? null;
      this._state = devices.lease_id !== null ? 'ok' : devices.no_gpu ? 'no-gpu' : 'no-lease';
      this._changed.emit();
    } catch (err) {
      this._ticks = 0;
      if (err instanceof ApiError && err.status === 404) {
        this._state = 'missing';
        this._message = null;
      } else {
        this._state = 'error';
        this._message = err instanceof Error ? err.message : String(err);
      }
      this._changed.emit();
      throw err; // the poll backs off
    }
  }

  private async _fetchLease(): Promise<void> {
    try {
      this._lease = (await this._get<ILeaseReply>('lease')).lease;
      this._leaseError = null;
    } catch (err) {
      // The lease comes from the gpuhub service: when it is down, the devices still show.
      this._leaseError = err instanceof Error ? err.message : String(err);
    }
  }

  private async _fetchMe(): Promise<void> {
    try {
      this._me = await this._get<IMe>('me');
      this._meError = null;
    } catch (err) {
      // The service may be down while NVML works: keep the devices, say why quota is missing.
      this._meError = err instanceof Error ? err.message : String(err);
    }
  }

  private _mergeDevices(reply: IDevicesReply): void {
    const old = new Map(this._devices.map(d => [d.uuid, d.history]));
    let newest = this._lastT ?? 0;
    const cutoff = Date.now() / 1000 - KEEP_S;
    this._devices = reply.devices.map(d => {
      const kept = (old.get(d.uuid) ?? []).concat(d.history);
      const seen = new Set<number>();
      const history: ISample[] = [];
      for (const s of kept) {
        if (s.t >= cutoff && !seen.has(s.t)) {
          seen.add(s.t);
          history.push(s);
        }
        newest = Math.max(newest, s.t);
      }
      history.sort((a, b) => a.t - b.t);
      return { ...d, history };
    });
    this._lastT = this._devices.length ? newest : null;
    this._simulated = reply.simulated;
  }

  private _get<T>(route: string, query: Record<string, string> = {}): Promise<T> {
    return requestAPI<T>('GET', route, { query, settings: this._settings });
  }

  private _changed = new Signal<this, void>(this);
  private _devices: IDevice[] = [];
  private _lastT: number | null = null;
  private _lease: ILease | null = null;
  private _leaseError: string | null = null;
  private _me: IMe | null = null;
  private _meError: string | null = null;
  private _message: string | null = null;
  private _poll: Poll;
  private _profile: string | null = null;
  private _settings: ServerConnection.ISettings;
  private _simulated = false;
  private _state: GpuState = 'loading';
  private _ticks = 0;
}

/** The GpuModel's options. */
export namespace GpuModel {
  /** How to build a model. */
  export interface IOptions {
    /** Milliseconds between polls. */
    refreshRate: number;
    /** The server to ask; the page's own by default. */
    serverSettings?: ServerConnection.ISettings;
  }
}
