/** What every page gets: the API client and who is looking. */
import { Api } from './api';

/** The console's context, read from the page's data-* attributes. */
export interface Ctx {
  /** The REST client (JupyterHub OAuth cookie + XSRF token). */
  api: Api;
  /** The logged-in user's JupyterHub name. */
  user: string;
  /** Whether they have the gpuhub admin scope. */
  admin: boolean;
  /** The service prefix, e.g. "/services/gpuhub/". */
  base: string;
  /** The hub's prefix, e.g. "/hub/". */
  hub: string;
}

/** A page draws itself into `root`; it may keep refreshing while the tab is visible. */
export type Page = (root: HTMLElement, ctx: Ctx) => Promise<void> | void;
