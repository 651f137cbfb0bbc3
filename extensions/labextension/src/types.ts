/**
 * The answers of the jupyter_gpuhub server extension (`gpuhub/api/v1/...`), as the
 * front end reads them. What it passes through from the gpuhub service (leases, `me`) is
 * typed by the service's API document (extensions/api-types, generated from
 * docs/reference/openapi.yaml); the extension's own routes (devices) are described here.
 */
import type { Schema } from '../../api-types/src';

/** One process on a device, with its GPU memory. */
export interface IProcess {
  pid: number;
  name: string;
  memory_mb: number;
}

/** One NVML sample of a device (utilization null: not available, e.g. on MIG). */
export interface ISample {
  t: number;
  /** Whose activity: the whole device, or (a shared GPU) this server's own processes. */
  scope: 'device' | 'lease';
  utilization_pct: number | null;
  memory_used_mb: number;
  memory_total_mb: number;
  temperature_c: number | null;
  power_w: number | null;
  power_limit_w: number | null;
  sm_clock_mhz: number | null;
  processes: IProcess[];
}

/** A leased device: a whole GPU or a MIG slice. */
export interface IDevice {
  uuid: string;
  index: number;
  name: string;
  kind: 'gpu' | 'mig';
  profile: string | null;
  simulated: boolean;
  latest: ISample | null;
  history: ISample[];
}

/** GET gpuhub/api/v1/devices */
export interface IDevicesReply {
  lease_id: number | null;
  /** The server's profile has no GPU (CPU only): no lease by design, not a missing one. */
  no_gpu?: boolean;
  /** The server's spawn profile, when the spawner said. */
  profile?: string | null;
  simulated: boolean;
  interval_s: number;
  devices: IDevice[];
  error: string | null;
}

/** A lease as the gpuhub service answers it. */
export type ILease = Schema<'Lease'>;

/** Why a queued lease waits, as the gpuhub service explains it (`waiting`). */
export type IWaiting = Schema<'Waiting'>;

/** GPU-idle reclaim's warning on a lease (the service's `idle_warning`). */
export type IIdleWarning = Schema<'IdleWarning'>;

/** GET gpuhub/api/v1/lease */
export interface ILeaseReply {
  lease: ILease | null;
  message: string | null;
}

/** A quota's limits; null fields are unlimited. */
export type IQuotaSpec = Schema<'QuotaSpec'>;

/** A quota with what is in use and left now. */
export type IQuotaStatus = Schema<'QuotaStatus'>;

/** GET gpuhub/api/v1/me (the gpuhub service's GET /api/v1/me). */
export type IMe = Schema<'Me'>;
