/**
 * The answers of the jupyter_gpuhub server extension's job routes
 * (`gpuhub/api/v1/jobs...`), which pass the gpuhub service's job views through.
 */

/** A job's state in the gpuhub service. */
export type JobStatus =
  'queued' | 'starting' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'timed_out';

/** States from which a job goes on. */
export const LIVE_STATUSES: JobStatus[] = ['queued', 'starting', 'running'];

/** What a request asks for: whole GPUs, a MIG slice, or a shared seat. */
export interface IShape {
  kind: 'gpu' | 'mig' | 'shared';
  count?: number;
  profile?: string;
  model?: string | null;
}

/** One job as the gpuhub service shows it. */
export interface IJob {
  id: number;
  user: string;
  name: string;
  path: string;
  kind: 'notebook' | 'script';
  status: JobStatus;
  position: number | null;
  reason: string | null;
  profile: string | null;
  image: string | null;
  shape: IShape | null;
  shape_text: string | null;
  parameters: Record<string, unknown>;
  max_runtime_s: number;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
  elapsed_s: number | null;
  gpu_hours: number;
  exit_code: number | null;
  folder: string | null;
  output_notebook: string | null;
  simulated?: boolean;
  definition_id?: number | null;
  /** Added by the server extension: the paths relative to this server's root folder
   * (null where outside it). */
  local?: {
    path: string | null;
    output_notebook: string | null;
    folder: string | null;
  };
}

/** A recurring job definition. */
export interface IDefinition {
  id: number;
  name: string;
  schedule: string;
  paused: boolean;
  next_run_at: string | null;
  last_run_at: string | null;
  last_job_id: number | null;
  path: string;
}

/** GET jobs/{id}/log */
export interface IJobLog {
  offset: number;
  next_offset: number;
  text: string;
  complete: boolean;
}

/** One parameter of a notebook's `parameters` cell. */
export interface IParameter {
  name: string;
  value: unknown;
  type: 'int' | 'float' | 'bool' | 'str' | 'list' | 'dict' | 'None';
  help: string | null;
}

/** A GPU shape the dialog offers, with what is free of it now. */
export interface IShapeChoice {
  shape: IShape;
  label: string;
  text: string;
  /** The models behind the shape ("H100-80GB or A100-80GB"). */
  models: string[];
  models_text: string;
  current: boolean;
  outcome: 'grant' | 'queue' | 'refuse' | null;
  message: string | null;
  free: number | null;
  total: number | null;
  ahead: number | null;
}

/** The shortest, default and longest maximum runtime of a job, in seconds. */
export interface IRuntimeLimits {
  min: number;
  default: number | null;
  max: number | null;
}

/** GET jobs/parameters?path= */
export interface IParametersReply {
  path: string;
  kind: 'notebook' | 'script';
  name: string;
  has_parameters_cell: boolean;
  parameters: IParameter[];
  unsupported: string[];
  defaults: {
    profile: string | null;
    current_shape: IShape | null;
    shapes: IShapeChoice[];
    queue_length: number | null;
    /** The service's limits of a job's maximum runtime (null: it did not answer). */
    runtime: IRuntimeLimits | null;
    schedules: boolean;
    error: string | null;
  };
}

/** The body of POST jobs. */
export interface IJobRequest {
  path: string;
  profile?: string | null;
  shape?: IShape | null;
  parameters: Record<string, unknown>;
  max_runtime_s?: number;
  name?: string | null;
  schedule?: string | null;
}
