/**
 * The answers of the jupyter_gpuhub server extension (`gpuhub/api/v1/...`), as the
 * front end reads them. Fields the panel does not show are left out.
 */

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
  simulated: boolean;
  interval_s: number;
  devices: IDevice[];
  error: string | null;
}

/** A lease as the gpuhub service answers it. */
export interface ILease {
  id: number;
  user: string;
  group: string | null;
  status: string;
  profile: string | null;
  label: string;
  units: number;
  node: string | null;
  simulated: boolean;
  granted_at: string | null;
  gpu_hours: number;
  /** Set while GPU-idle reclaim has warned that this server will be stopped. */
  idle_warning?: IIdleWarning | null;
  /** While queued: why it waits, until when, what is free instead (null otherwise). */
  waiting?: IWaiting | null;
}

/** Why a queued lease waits, as the gpuhub service explains it (`waiting`). */
export interface IWaiting {
  reason: 'pool_busy' | 'quota_limit' | 'queue_order' | 'reserved';
  message: string;
  position: number;
  estimate: { at: string | null; basis: string; message: string };
  alternatives: { message: string }[];
  summary: string;
}

/** GPU-idle reclaim's warning on a lease (the service's `idle_warning`). */
export interface IIdleWarning {
  /** When the GPUs (and kernels and terminals) were last busy. */
  since: string;
  /** When the server will be stopped unless it is busy again or kept. */
  reclaim_at: string;
  /** Seconds the user may keep it for. */
  can_keep_for: number[];
}

/** GET gpuhub/api/v1/lease */
export interface ILeaseReply {
  lease: ILease | null;
  message: string | null;
}

/** A quota's limits; null fields are unlimited. */
export interface IQuotaSpec {
  max_units?: number | null;
  gpu_hours?: number | null;
  period?: string;
}

/** A quota with what is in use and left now. */
export interface IQuotaStatus {
  kind: 'user' | 'group';
  name: string;
  quota: IQuotaSpec | null;
  units_active: number;
  units_queued: number;
  gpu_hours_used?: number;
  gpu_hours_left?: number;
  period_start?: string;
  period_end?: string;
  period?: string;
}

/** GET gpuhub/api/v1/me (the gpuhub service's GET /api/v1/me). */
export interface IMe {
  name: string;
  groups: string[];
  admin: boolean;
  quotas: IQuotaStatus[];
  leases: ILease[];
  queued: ILease[];
}
