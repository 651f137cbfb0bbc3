/**
 * The answers of the jupyter_gpuhub server extension's job routes
 * (`gpuhub/api/v1/jobs...`), which pass the gpuhub service's job views through: those are
 * typed by the service's API document (extensions/api-types, generated from
 * docs/reference/openapi.yaml); the extension's own answers (parameters) are described here.
 */
import type { Schema } from '../../api-types/src';

/** A job's state in the gpuhub service. */
export type JobStatus = Schema<'JobStatus'>;

/** States from which a job goes on. */
export const LIVE_STATUSES: JobStatus[] = ['queued', 'starting', 'running'];

/** `guaranteed` (its GPUs stay until it ends) or `spot` (idle GPUs at a discount, taken
 * back with a notice when guaranteed work needs them). */
export type JobTier = Schema<'JobTier'>;

/** How often a job runs again after an attempt that ended in each failure class. */
export type IRetryPolicy = Schema<'RetryPolicy'>;

/** One run of a job, on one lease (the last of a job's `attempts` is the current one). */
export type IJobAttempt = Schema<'JobAttempt'>;

/** Whether spot capacity is offered here, its discount and how it is taken back. */
export type ISpotPolicy = Schema<'SpotPolicy'>;

/** What a request asks for: whole GPUs, a MIG slice, or a shared seat. */
export type IShape = Schema<'Shape'>;

/** One job as the gpuhub service shows it, with what the server extension adds. */
export type IJob = Schema<'Job'> & {
  /** The paths relative to this server's root folder (null where outside it). */
  local?: {
    path: string | null;
    output_notebook: string | null;
    folder: string | null;
  };
};

/** A recurring job definition. */
export type IDefinition = Schema<'JobDefinition'>;

/** GET jobs/{id}/log */
export type IJobLog = Schema<'JobLog'>;

/** One parameter of a notebook's `parameters` cell. */
export interface IParameter {
  name: string;
  value: unknown;
  type: 'int' | 'float' | 'bool' | 'str' | 'list' | 'dict' | 'None';
  help: string | null;
}

/** Credits per hour (or per GPU-hour): the lowest and highest over the GPU models that
 * may serve a request (equal where one rate applies). */
export type ICreditsSpan = Schema<'CreditRange'>;

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
  /** What it costs per hour (absent or null: the service does not say). */
  credits_per_hour?: ICreditsSpan | null;
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
    /** The profile the job runs on: this server's, or on a CPU-only server the default GPU profile. */
    profile: string | null;
    /** This server has no GPU (CPU-only profile): the job goes to the pool on `profile`. */
    no_gpu?: boolean;
    /** This server's own profile. */
    server_profile?: string | null;
    current_shape: IShape | null;
    shapes: IShapeChoice[];
    queue_length: number | null;
    /** The service's limits of a job's maximum runtime (null: it did not answer). */
    runtime: IRuntimeLimits | null;
    schedules: boolean;
    /** The most nodes a job of `profile` may span (me/options' `max_nodes`; absent: 1). */
    max_nodes?: number;
    /** What one GPU of `profile` costs per hour (absent or null: the service does not say,
     * or a CPU-only profile); the dialog multiplies it by the GPUs and nodes chosen. */
    credits_per_gpu_hour?: ICreditsSpan | null;
    /** What `profile` costs per hour at its own GPU count. */
    credits_per_hour?: ICreditsSpan | null;
    /** The site's spot capacity (me/options' `spot`; absent or null: the service does not
     * say, none is offered). */
    spot?: ISpotPolicy | null;
    error: string | null;
  };
}

/** The body of POST jobs. */
export interface IJobRequest {
  path: string;
  profile?: string | null;
  shape?: IShape | null;
  /** Nodes the job spans, each with the profile's GPUs: sent only when over 1 and the
   * request has no shape (a whole-GPU shape carries its own `nodes`). */
  nodes?: number | null;
  parameters: Record<string, unknown>;
  max_runtime_s?: number;
  name?: string | null;
  schedule?: string | null;
  /** Sent as `spot` when the Spot box is ticked (the service's default: guaranteed). */
  tier?: JobTier;
  /** Retries per failure class: sent with a spot job (its `preempted` count). */
  retry?: Partial<IRetryPolicy> | null;
}
