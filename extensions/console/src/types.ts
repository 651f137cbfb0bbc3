/** The shapes of the REST API's answers the console reads (docs/reference/openapi.yaml). */

export interface Shape {
  kind: 'gpu' | 'mig' | 'shared';
  count?: number;
  profile?: string;
  model?: string | null;
}

export interface Device {
  uuid: string;
  index: number;
  model: string;
  memory_mb: number;
  simulated: boolean;
  slot: number;
  parent_uuid?: string;
  mig_index?: number;
  profile?: string;
  shared_by?: number;
}

export interface Activity {
  window_s: number;
  utilization_mean_pct: number | null;
  utilization_max_pct: number | null;
  memory_used_mb: number;
  last_active_at: string | null;
  reported_at: string;
  idle_s: number | null;
  busy_kernels?: number | null;
  terminals?: number | null;
}

export interface WaitAlternative {
  shape: Shape;
  free: number;
  units: number;
  simulated: boolean;
  message: string;
}

export interface Waiting {
  reason: string;
  message: string;
  position: number;
  estimate: { at: string | null; basis: string; message: string };
  alternatives: WaitAlternative[];
  summary: string;
}

export interface IdleWarning {
  since: string;
  reclaim_at: string;
  can_keep_for: number[];
}

export interface Lease {
  id: number;
  user: string;
  group: string | null;
  status: 'queued' | 'active' | 'released' | 'cancelled' | 'refused';
  shape: Shape;
  profile: string | null;
  label: string;
  priority: number;
  units: number;
  node: string | null;
  devices: Device[];
  simulated: boolean;
  position: number | null;
  requested_at: string;
  granted_at: string | null;
  ended_at: string | null;
  end_reason: string | null;
  gpu_hours: number;
  activity?: Activity | null;
  idle_warning?: IdleWarning | null;
  waiting?: Waiting | null;
}

/** What a user or group may hold; null means no limit on that axis. */
export interface QuotaSpec {
  max_units: number | null;
  gpu_hours: number | null;
  period: 'day' | 'week' | 'month' | 'term';
  term_start: string | null;
  term_end: string | null;
  allowed_shapes: string[] | null;
  allowed_profiles: string[] | null;
  priority: number;
  per_user_max_units: number | null;
}

export interface QuotaStatus {
  kind: 'user' | 'group';
  name: string;
  quota: QuotaSpec | null;
  units_active: number;
  units_queued: number;
  gpu_hours_used?: number;
  gpu_hours_left?: number;
  period_start?: string;
  period_end?: string;
  period?: string;
  default?: boolean;
}

export interface Me {
  name: string;
  groups: string[];
  admin: boolean;
  quotas: QuotaStatus[];
  leases: Lease[];
  queued: Lease[];
}

export interface Holder {
  lease: number | null;
  user: string | null;
  group: string | null;
  units: number;
  activity: Activity | null;
}

export interface PoolGpu {
  uuid: string;
  index: number;
  model: string;
  memory_mb: number;
  mode: 'exclusive' | 'mig' | 'shared';
  shares: number;
  simulated: boolean;
  nvlink_peers: string[];
  state: 'free' | 'partial' | 'busy';
  holders?: (Holder | null)[];
  mig_instances?: {
    uuid: string;
    index?: number;
    profile: string;
    memory_mb: number;
    slices: number;
    holder: Holder | null;
  }[];
}

export interface Pool {
  simulated: boolean;
  units_total: number;
  units_free: number;
  queue_length: number;
  nodes: { name: string; simulated: boolean; gpus: PoolGpu[] }[];
}

export interface Job {
  id: number;
  user: string;
  name: string;
  path: string;
  status: string;
  position: number | null;
  reason: string | null;
  shape_text: string;
  node: string | null;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
  gpu_hours: number;
}

export interface UsageRow {
  day?: string;
  week?: string;
  month?: string;
  user?: string;
  group?: string | null;
  gpu_hours: number;
  leases: number;
}

export interface Usage {
  start: string;
  end: string;
  by: string[];
  rows: UsageRow[];
  total_gpu_hours: number;
}

/** A reservation's window. */
export interface Span {
  start: string;
  end: string;
}

export interface Reservation {
  id: number;
  group: string;
  shape: Shape;
  count: number;
  devices: { uuid: string; node: string; name?: string }[];
  repeat: 'once' | 'weekly';
  timezone: string;
  start: string;
  end: string;
  state: 'open' | 'upcoming' | 'ended';
  current: Span | null;
  next: Span | null;
  note: string;
  created_by: string;
  created_at: string;
  message: string;
}
