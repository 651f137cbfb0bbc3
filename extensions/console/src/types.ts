/**
 * The shapes of the REST API's answers the console reads: aliases of the schemas of
 * docs/reference/openapi.yaml, generated into extensions/api-types (`npm run gen:api`
 * there), which the JupyterLab extension reads too.
 */
import type { Schema } from '../../api-types/src';

export type Shape = Schema<'Shape'>;
export type Device = Schema<'Device'>;
export type Activity = Schema<'Activity'>;
/** What a holder's server last reported of one device (the pool's slots). */
export type HolderActivity = Schema<'HolderActivity'>;
export type WaitAlternative = Schema<'WaitAlternative'>;
export type Waiting = Schema<'Waiting'>;
export type IdleWarning = Schema<'IdleWarning'>;
export type Lease = Schema<'Lease'>;
/** What a user or group may hold; null means no limit on that axis. */
export type QuotaSpec = Schema<'QuotaSpec'>;
export type QuotaStatus = Schema<'QuotaStatus'>;
export type Me = Schema<'Me'>;
/** What a user may ask for now (GET /me/options). */
export type Options = Schema<'Options'>;
export type Holder = Schema<'Holder'>;
export type PoolGpu = Schema<'PoolGpu'>;
export type Pool = Schema<'Pool'>;
export type Job = Schema<'Job'>;
export type UsageRow = Schema<'UsageRow'>;
export type Usage = Schema<'Usage'>;
/** A reservation's window. */
export type Span = Schema<'ReservationWindow'>;
export type Reservation = Schema<'Reservation'>;
/** A GPU model's credits per GPU-hour and where that rate comes from. */
export type Rate = Schema<'Rate'>;
/** GET /rates: each model's rate and the default. */
export type RateCard = Schema<'RateCard'>;
/** What one user was charged for one model at one rate and tier, through one group. */
export type StatementRow = Schema<'StatementRow'>;
/** GET /statements: the rows of a period and their totals. */
export type Statement = Schema<'Statement'>;
