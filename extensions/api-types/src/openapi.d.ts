/**
 * The gpuhub REST API's types: generated, do not edit.
 *
 * From docs/reference/openapi.yaml (sha256 fe221fe614e3d82888d7c7c847d5a245b57245d28499e18604814dc7fabb7bee)
 * by openapi-typescript 7.13.0; run `npm run gen:api` in extensions/api-types.
 */

export interface paths {
    "/api/v1": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The service's name, version and whether its pool is simulated.
         * @description Also a cheap health check.
         */
        get: operations["getService"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/pool": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Every node and GPU, its state and who holds it.
         * @description Any user may read the pool. Holders that are not the caller's own leases are
         *     shown without lease id, user and group unless the caller is a gpuhub admin. The
         *     pool follows its inventory (`GpuhubService.inventory_refresh_interval`): nodes that
         *     take no new leases say so (`usable`, `state`), and GPUs that work outside gpuhub
         *     holds name that holder (`held_outside`).
         */
        get: operations["getPool"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/me": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The caller's quotas with what is left, active leases and queued requests.
         * @description Admins may name another user with `user` and get the same view of that user
         *     (their groups are asked of JupyterHub); spawn forms use this.
         */
        get: operations["getMe"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/me/options": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * What the caller may ask for now — GPU shapes, their models, profiles, job limits.
         * @description One answer that the spawn form, the JupyterLab "Run as GPU job" dialog, the CLI
         *     (`gpuhub options`) and the console read, so that no limit or shape rule is copied
         *     into them. `shapes` are those the pool can give (whole GPUs 1, 2, 4, 8 up to the
         *     most on one node, and that most; each MIG profile; a shared seat), each with the
         *     GPU models behind it and the scheduler's preview for the caller (as
         *     `POST /api/v1/leases/preview`: nothing is requested); `profiles` are the spawn
         *     profiles open to the caller (their groups and quotas allow them; a CPU-only
         *     profile, `shape: null`, is open to its groups whatever the quotas say, as its
         *     servers ask for no GPU; `max_nodes`, the most nodes a job of the profile may span
         *     here); `jobs` the
         *     limits of a job's maximum runtime and whether recurring schedules are taken.
         *     Admins may name another user with `user`.
         */
        get: operations["getMyOptions"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/leases/preview": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * What a lease request would get now (grant, queue or refuse); changes nothing.
         * @description Takes the body of `POST /api/v1/leases` and runs the same checks (membership,
         *     the pool, quotas, the queue) without taking anything. Spawn forms show its
         *     `message` next to each profile.
         */
        post: operations["previewLease"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/leases": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Leases, newest first.
         * @description Without `user`, a user gets their own leases and an admin gets everyone's.
         *     Live leases (queued, active) by default; ask for ended ones with `status`.
         */
        get: operations["listLeases"];
        put?: never;
        /**
         * Ask for GPUs; the lease is granted at once or queued.
         * @description The answer is the new lease: `active` with its node and devices when the request
         *     fits now, or `queued` with its `position` when it must wait. A request that quotas
         *     forbid, or that the pool could never meet, is refused without queueing, with a
         *     message naming the quota (and what is left) or the missing hardware.
         *
         *     The lease is charged to the caller (or, for admins, to `user`) and to `group`:
         *     by default the one group of the user that has a quota.
         *
         *     Send an `Idempotency-Key` to make retrying safe: a request whose answer was lost
         *     (the service restarted, the connection broke) can be sent again with the same key
         *     and gets the lease the first one made, as it is now (`200`, header
         *     `Idempotent-Replayed: true`), also after a restart of the service and after the
         *     lease ended. Keys belong to the user the lease is for. The same key with a
         *     different request is refused (`422`, `error: idempotency_conflict`). A refused
         *     request is not remembered: sent again with its key, it is decided again.
         */
        post: operations["requestLease"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/leases/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The lease id. */
                id: components["parameters"]["LeaseId"];
            };
            cookie?: never;
        };
        /** One lease, live or ended. */
        get: operations["getLease"];
        put?: never;
        post?: never;
        /**
         * Release an active lease or cancel a queued one.
         * @description The devices go back to the pool at once and queued requests that now fit are
         *     granted. Ending a lease that has already ended changes nothing and returns it.
         *     The ledger keeps who ended it, and why when `reason` is given:
         *     `released by admin: blocking the lab`.
         */
        delete: operations["endLease"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/leases/{id}/activity": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The lease id. */
                id: components["parameters"]["LeaseId"];
            };
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Report what an active lease's GPUs did lately (its server does, every 30 s or so).
         * @description The lease's single-user server samples its own devices and sends a short summary
         *     with its own token. Only the lease's own user (or a gpuhub admin) may report;
         *     another user's lease is not found. The service keeps the latest summary of each
         *     active lease (no history), in memory: it shows as `activity` on the lease, on the
         *     pool's holders and in the Prometheus metrics, is dropped when the lease ends, and
         *     is forgotten by a restart of the service until the next report.
         *
         *     `devices` must be devices of the lease (`uuid` as in the lease's `devices`: the
         *     GPU UUID, or the `MIG-...` UUID of a slice); a device that is not is refused with
         *     400 naming it. A mean above its max (by more than 0.01, for rounding), a device listed twice, or a `last_active_at`
         *     more than 5 minutes in the future are refused too.
         */
        post: operations["reportLeaseActivity"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/leases/{id}/devices": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The lease id. */
                id: components["parameters"]["LeaseId"];
            };
            cookie?: never;
        };
        get?: never;
        /**
         * Record the GPUs a cluster engine gave an active lease's work (admins; the hub's Slurm spawner).
         * @description On a cluster engine that picks device indices itself (Slurm, for `--gres=gpu:N`),
         *     gpuhub chooses the node and the number of whole GPUs, and the engine the indices
         *     on that node. The hub's Slurm spawner reads them back once the server runs and
         *     sends them here, so the lease, the pool and the user's GPU panel name the devices
         *     the work really has. The lease moves onto the GPUs with these indices on its node;
         *     where another of gpuhub's leases holds one of them, that lease takes in exchange a
         *     GPU this one leaves. Sending the lease's own indices changes nothing.
         *
         *     Needs the gpuhub admin scope. Refused with 400 (changing nothing) where the count
         *     differs from the lease's, the node has no whole GPU with such an index, the lease
         *     holds MIG slices or shared seats, or something gpuhub does not manage holds one.
         */
        put: operations["placeLease"];
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/leases/{id}/keep": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The lease id. */
                id: components["parameters"]["LeaseId"];
            };
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Keep a notebook server's lease from GPU-idle reclaim for a while.
         * @description A lease held for a notebook server (label `server:USER/NAME`) whose GPUs stay idle
         *     is warned about (`idle_warning` on the lease), then released and its server stopped
         *     (see the how-to on idle reclaim). Its user (or a gpuhub admin) may keep it for
         *     `seconds`: no warning and no reclaim until then; if the GPUs are still idle then,
         *     the warning comes back at once. `seconds` may be at most the lease's idle rule's
         *     `max_keep_s` (4 h by default; the warning's `can_keep_for` lists the offered
         *     choices); more is refused with 400. Another user's lease is not found; a lease
         *     that is not active is 409 `not_active`; a job's lease (never reclaimed for
         *     idleness) is 409 `not_reclaimable`. Keeps live in the service's memory: a restart
         *     forgets them (the lease is then warned again before any reclaim).
         */
        post: operations["keepLease"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/queue": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Waiting requests in the order they will be considered.
         * @description Higher priority first, then older first. Entries of other users are shown without
         *     id and user unless the caller is a gpuhub admin. The caller's own entries (every
         *     entry, for admins) say in `waiting` why they wait, when they may be granted and
         *     which shapes are free instead.
         */
        get: operations["getQueue"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/quotas": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Every user and group quota with its current use (admins). */
        get: operations["listQuotas"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/quotas/users/{name}": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A JupyterHub user name. */
                name: components["parameters"]["UserName"];
            };
            cookie?: never;
        };
        /**
         * A user's quota (their own, or the default) and what is left.
         * @description A user may read their own; admins anyone's.
         */
        get: operations["getUserQuota"];
        /** Create or replace a user's quota (admins). Takes effect at once. */
        put: operations["setUserQuota"];
        post?: never;
        /** Remove a user's quota (admins); the user falls back to the default quota. */
        delete: operations["deleteUserQuota"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/quotas/groups/{name}": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A JupyterHub group name. */
                name: components["parameters"]["GroupName"];
            };
            cookie?: never;
        };
        /**
         * A JupyterHub group's quota and what is left.
         * @description Members may read their groups' quotas; admins any group's.
         */
        get: operations["getGroupQuota"];
        /**
         * Create or replace a group's quota (admins). Takes effect at once.
         * @description The group must exist in JupyterHub (the service asks the hub): a group the hub does
         *     not have is refused with 404 naming it, so that a typo'd name does not hold a quota
         *     nobody is charged to, unless `create=true`, which creates the group first.
         */
        put: operations["setGroupQuota"];
        post?: never;
        /** Remove a group's quota (admins); the group is then not limited. */
        delete: operations["deleteGroupQuota"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/usage": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * GPU-hours per UTC day (or week, month), user and group, as JSON or CSV.
         * @description Every lease that held devices between `start` and `end` contributes its GPU units
         *     times the hours it held them, split at UTC midnight. Running leases count up to
         *     now. Without `user`, a user gets their own usage and an admin everyone's.
         */
        get: operations["getUsage"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/rates": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Credits per GPU-hour of each GPU model of the pool.
         * @description Everyone may read the rate card. A MIG slice or a shared seat costs its share of its
         *     GPU's rate. An admin's rate (`PUT /api/v1/rates/{model}`) wins over the configured
         *     one (`GpuhubService.rates`), which wins over the default.
         */
        get: operations["listRates"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/rates/{model}": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A GPU model of the pool, as the inventory names it, e.g. `H100-80GB`. */
                model: string;
            };
            cookie?: never;
        };
        get?: never;
        /** Set a model's rate from now on (admins); leases already granted keep theirs. */
        put: operations["setRate"];
        post?: never;
        /** Drop an admin's rate (admins); the configured rate, or the default, applies again. */
        delete: operations["unsetRate"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/statements": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Credits and GPU-hours charged in a period, per group, user, model, tier and rate.
         * @description Each lease is charged units × hours × the rate written on it when granted × its
         *     tier's discount; the part that falls between `start` and `end` counts (running
         *     leases up to now). A rate changed within the period makes rows of its own. The
         *     totals are the sums of the rows. Without `user`, a user gets their own statement
         *     and an admin everyone's.
         */
        get: operations["getStatement"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/simulate": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * What a quota or rate change would have done to the last weeks' requests (admins).
         * @description Replays the requests of the last `weeks` of the ledger through two fresh schedulers
         *     on the pool as it is now: once with the quotas and rates in force, once with the
         *     change proposed. The answer compares the two per user and per group: requests,
         *     waits (mean and 95th percentile), refusals, GPU-hours and credits, and who would
         *     have waited longer or shorter. Nothing changes: not the quotas, not the rates, not
         *     the ledger, not a lease.
         *
         *     A lease that ran asks at its request time and holds its devices as long as it did;
         *     a request that never ran asks for its stated hours, else for as long as it waited,
         *     and is withdrawn when it was. A request a quota refuses is asked again when a lease
         *     of its user or group ends and at each midnight UTC, as a job waiting for its quota
         *     does; its wait counts. Reservations are not replayed, and budgets start from
         *     nothing at the start of the window. Requests refused outright never reached the
         *     ledger, so a looser quota's new takers are not seen.
         *
         *     At most 50,000 leases are replayed: a window with more is refused naming `weeks`.
         *     One simulation runs at a time (409 while another runs); the replays run beside the
         *     scheduler, which goes on granting. They take about a millisecond per lease each.
         */
        post: operations["simulate"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/cohorts": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Every JupyterHub group with its members and quota (admins).
         * @description The hub's groups, by name, with their members and their group quota with what is in
         *     use now; groups that have a quota here but are gone from the hub are listed too,
         *     with `in_hub` false and no members.
         */
        get: operations["listCohorts"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/cohorts/{name}": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A JupyterHub group name. */
                name: components["parameters"]["GroupName"];
            };
            cookie?: never;
        };
        /**
         * A cohort's members, its group quota with what is in use, and GPU-hours this period (admins).
         * @description Members are the JupyterHub group's. Usage is the GPU-hours charged to the group per
         *     user since the start of the quota's current period (this week when the group has
         *     no quota), up to now.
         */
        get: operations["getCohort"];
        /**
         * Create or update a cohort in one step (admins).
         * @description Creates the JupyterHub group if the hub lacks it, creates the listed users the hub
         *     lacks (unless `create_users` is false: then the request is refused with 400 naming
         *     them, and nothing changes), adds the listed users to the group (members not listed
         *     stay), and sets the group's quota when `quota` is given (`per_user_max_units` is the
         *     per-member cap). Every check is made before the first change. Uses the service's
         *     own hub token: its role needs `admin:groups` and, to create users, `admin:users`.
         */
        put: operations["setCohort"];
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/cohorts/{name}/members": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A JupyterHub group name. */
                name: components["parameters"]["GroupName"];
            };
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Add users to a cohort's group, creating users the hub lacks unless told not to (admins). */
        post: operations["addCohortMembers"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/cohorts/{name}/members/{user}": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A JupyterHub group name. */
                name: components["parameters"]["GroupName"];
                /** @description The member to take out of the group (the user stays in the hub). */
                user: components["schemas"]["Name"];
            };
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        /** Take a user out of a cohort's group (admins). */
        delete: operations["removeCohortMember"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/reservations": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Every reservation not deleted, by id (any logged-in user).
         * @description Reservations are no secret: they explain why requests wait. Ended one-off
         *     reservations stay listed (`state: ended`) until an admin deletes them.
         */
        get: operations["listReservations"];
        put?: never;
        /**
         * Reserve devices for a JupyterHub group in a time window, once or weekly (admins).
         * @description Picks `count` devices of the shape now (whole GPUs, MIG slices of a profile, or
         *     shared GPUs with all their seats) that no other reservation holds in an overlapping
         *     window. During a window only the group's members are placed on them (and on them
         *     first); outside it they serve everyone, except that a lease of someone else is not
         *     placed on them when it would still run when the next window opens (its `hours`, or
         *     `GpuhubService.reservation_guard` when it gave none). Running leases are never
         *     stopped when a window opens. `start` and `end` are the first window; without an
         *     offset they are wall times in `timezone`. A window is at most 7 days long (a weekly
         *     one shorter than a week); a one-off window that has already ended is refused. The
         *     group must exist in JupyterHub (404 naming it). No `Idempotency-Key`: a retry of a
         *     request whose answer was lost may make a second reservation (list them to check).
         */
        post: operations["createReservation"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/reservations/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The reservation id. */
                id: components["parameters"]["ReservationId"];
            };
            cookie?: never;
        };
        /** One reservation (any logged-in user). */
        get: operations["getReservation"];
        put?: never;
        post?: never;
        /**
         * Delete a reservation (admins); its devices serve everyone again at once.
         * @description Leases running on its devices keep running; queued requests that now fit are granted.
         */
        delete: operations["deleteReservation"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/jobs": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Batch jobs, newest first.
         * @description Without `user`, a user gets their own jobs and an admin everyone's. Every status by
         *     default; ask for some with `status`.
         */
        get: operations["listJobs"];
        put?: never;
        /**
         * Run a notebook or script as a batch job on GPUs of a profile.
         * @description The body carries the notebook (its JSON, nbformat 4) or the script (its source)
         *     and the path it has in the user's home: the job runs on this snapshot, so later
         *     edits do not change it. Its GPU request is an ordinary lease labelled
         *     `job:USER/ID`: granted now or queued, under the same quotas, booked in the same
         *     ledger. The answer is the new job, `queued` (with its `position` while its lease
         *     waits); it starts once its lease is granted.
         *
         *     Refused with 400 naming the field, and nothing created: a path that is absolute,
         *     starts with `~`, has a `.` or `..` segment or does not end in `.ipynb` or `.py`; a
         *     notebook nbformat finds invalid; parameters that are not identifiers, more than
         *     100, or over 64 KiB as JSON; a profile that does not exist or is not open to the
         *     user; a CPU-only profile (no GPU) without a `shape`. Quotas and the pool refuse as
         *     on `POST /leases`. `nodes` over 1 is refused (400, field `nodes`) where the profile's
         *     `max_nodes` is lower, where the shape is not whole GPUs, and where the site's job
         *     executor runs no multi-node jobs (only the Slurm executor does; Docker and local
         *     processes refuse them). `tier: spot` asks for preemptible capacity at the spot
         *     discount, refused (400, field `tier`) where the site offers none; `retry` says how
         *     often the job runs again after an attempt that ended preempted, node failed,
         *     failed or out of memory. This route reads bodies of
         *     up to 16 MiB. `Idempotency-Key` works as on `POST /leases`.
         */
        post: operations["submitJob"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/jobs/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The job id. */
                id: components["parameters"]["JobId"];
            };
            cookie?: never;
        };
        /** One job, live or ended. */
        get: operations["getJob"];
        put?: never;
        post?: never;
        /**
         * Cancel a job.
         * @description A queued job is cancelled at once (its GPU request is withdrawn). A starting or
         *     running job is stopped (SIGTERM, a grace period, then kill) and the answer comes
         *     once it has stopped; its GPUs go back to the pool and its GPU-hours are booked.
         */
        delete: operations["cancelJob"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/jobs/{id}/log": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The job id. */
                id: components["parameters"]["JobId"];
            };
            cookie?: never;
        };
        /**
         * A page of a job's log (everything it printed).
         * @description Bytes `offset` to `offset + limit` of the log, decoded as UTF-8 (invalid bytes
         *     replaced). Read on from `next_offset`. While the job lives the log grows; once it
         *     has ended the service keeps its last MiB, and `complete` is true when there is
         *     nothing more to read. Bytes before the kept part are skipped (`offset` in the
         *     answer says where the text starts).
         */
        get: operations["getJobLog"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/job-definitions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Recurring job definitions, newest first.
         * @description Without `user`, a user gets their own and an admin everyone's.
         */
        get: operations["listJobDefinitions"];
        put?: never;
        /**
         * A job that runs on a cron schedule (UTC unless it names a zone).
         * @description The body is a job request (checked as on `POST /jobs`) with a cron `schedule`: five
         *     fields (minute hour day-of-month month day-of-week; `*`, lists, ranges, steps, names
         *     such as `mon` or `jan`, `L` and `fri#2`; when both day fields are restricted a day
         *     matches either) or a macro (`@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`),
         *     in UTC unless prefixed with a zone, `CRON_TZ=Europe/Berlin 0 2 * * *`. At each due time the service submits one
         *     run, once, also across restarts; a run the quotas refuse is skipped and its reason
         *     kept in `last_error`. This route reads bodies of up to 16 MiB.
         */
        post: operations["createJobDefinition"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/v1/job-definitions/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The job definition id. */
                id: components["parameters"]["JobDefinitionId"];
            };
            cookie?: never;
        };
        /** One job definition. */
        get: operations["getJobDefinition"];
        put?: never;
        post?: never;
        /** Remove a job definition (its past runs stay). */
        delete: operations["deleteJobDefinition"];
        options?: never;
        head?: never;
        /**
         * Pause or resume a job definition.
         * @description Resuming schedules the next run at the first due time after now.
         */
        patch: operations["updateJobDefinition"];
        trace?: never;
    };
    "/metrics": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Prometheus metrics of the pool, the queue and the ledger.
         * @description Needs a token with the `custom:gpuhub:admin` scope, unless
         *     `GpuhubService.authenticate_metrics` is False.
         */
        get: operations["getMetrics"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        /** @description Every error answer. */
        Error: {
            /** @description The HTTP status again. */
            status: number;
            /**
             * @description A machine-readable kind of error.
             * @enum {string}
             */
            error: "invalid" | "unauthenticated" | "forbidden" | "quota_exceeded" | "not_found" | "not_active" | "not_reclaimable" | "unsatisfiable" | "idempotency_conflict" | "job_ended" | "method_not_allowed" | "too_large" | "hub_error" | "hub_refused" | "no_such_user" | "conflict" | "internal" | "http";
            /** @description A sentence for people saying what is wrong and what to do. */
            message: string;
            /** @description The request field or parameter at fault, when there is one (e.g. `shape`, `group`, `limit`). */
            field: string | null;
        };
        /**
         * @description A JupyterHub user or group name, matched whole, as JupyterHub accepts one:
         *     1-255 characters, no `/` and no control character, no white space at either
         *     end, not only dots. Any other Unicode is fine (`élève`, `john smith`, `r&d`);
         *     percent-encode it in URL paths and query strings.
         */
        Name: string;
        ServiceInfo: {
            /** @constant */
            service: "gpuhub";
            /** @description The gpuhub version. */
            version: string;
            /** @constant */
            api: "v1";
            /** @description True when any node of the pool is simulated. */
            simulated: boolean;
        };
        /**
         * @description What a request asks for: whole GPUs, one MIG slice, or a seat on a shared
         *     (time-sliced) GPU. `kind` must always be given.
         */
        Shape: components["schemas"]["GpuShape"] | components["schemas"]["MigShape"] | components["schemas"]["SharedShape"];
        /**
         * @description `count` whole GPUs on one node, NVLink-connected where possible; with `nodes`,
         *     `count` GPUs on each of that many nodes, all granted at once or none (a multi-node
         *     job: one lease, one queue entry). Quota label `gpu`; 1 GPU unit each, `count` ×
         *     `nodes` units in all.
         */
        GpuShape: {
            /**
             * @description discriminator enum property added by openapi-typescript
             * @enum {string}
             */
            kind: "gpu";
            /**
             * @description How many GPUs (on each node).
             * @default 1
             */
            count: number;
            /**
             * @description Nodes, each with `count` GPUs. Shown only when more than 1 (absent or null: one node).
             *     More than one is for jobs (`JobRequest.nodes`) on a profile whose `max_nodes`
             *     allows it.
             */
            nodes?: number | null;
            model?: components["schemas"]["ModelFilter"];
        };
        /** @description One MIG instance of a profile. Quota label `mig:<profile>`; charged its share of the GPU's compute slices (1/7 for 1g on A100/H100). */
        MigShape: {
            /**
             * @description discriminator enum property added by openapi-typescript
             * @enum {string}
             */
            kind: "mig";
            /** @description A MIG profile such as `1g.10gb` or `1c.3g.40gb`. */
            profile: string;
            model?: components["schemas"]["ModelFilter"];
        };
        /** @description A seat on a time-sliced GPU shared by at most k holders. Quota label `shared`; charged 1/k. */
        SharedShape: {
            /**
             * @description discriminator enum property added by openapi-typescript
             * @enum {string}
             */
            kind: "shared";
            model?: components["schemas"]["ModelFilter"];
        };
        /** @description GPU model to match, e.g. `H100` (a case-insensitive substring), or a glob such as `A100*`. */
        ModelFilter: string | null;
        /** @description Body of `POST /api/v1/leases`. */
        LeaseRequest: {
            shape: components["schemas"]["Shape"];
            /** @description JupyterHub group to charge; default the user's one group that has a quota. Needed when the user is in several such groups. */
            group?: string | null;
            /** @description Spawner profile name, checked against `allowed_profiles` of the quotas. */
            profile?: string | null;
            /**
             * @description What holds the lease, e.g. `server:alice/` or `job:17`.
             * @default
             */
            label: string;
            /** @description Expected duration in hours; when given, the GPU-hours it needs (units × hours) must be left in the quotas' budgets. */
            hours?: number | null;
            /** @description Request on behalf of this user (admins only); a `Name`. */
            user?: string | null;
            /**
             * @description `spot`: preemptible capacity, where an admin offers it (`Options.spot`): placed on
             *     devices that would otherwise sit idle, after the guaranteed requests; charged the
             *     rate × the spot discount; counted against `spot_max_units` and `spot_gpu_hours`;
             *     taken back (a notice, then a deadline) when a guaranteed request needs its devices.
             * @default guaranteed
             * @enum {string}
             */
            tier: "guaranteed" | "spot";
        };
        /**
         * @description `queued` (waiting), `active` (holds devices), `released` (ended after being active),
         *     `cancelled` (ended while queued), `refused` (dropped from the queue because a quota
         *     no longer allowed it; `end_reason` says which).
         * @enum {string}
         */
        LeaseStatus: "queued" | "active" | "released" | "cancelled" | "refused";
        /** @description One device of an active lease, as the holder uses it. */
        Device: {
            /** @description GPU UUID, or the MIG device UUID (`MIG-...`). */
            uuid: string;
            /** @description Index of the (parent) GPU on its node. */
            index: number;
            model: string;
            /** @description Memory of the GPU, or of the MIG instance. */
            memory_mb: number;
            /** @description True for a simulated device. */
            simulated: boolean;
            /** @description Slot of a shared GPU (0 otherwise). */
            slot: number;
            /** @description Multi-node leases only: the node the device is on. */
            node?: string;
            /** @description MIG only: UUID of the GPU the instance belongs to. */
            parent_uuid?: string;
            /** @description MIG only: index of the instance on its GPU. */
            mig_index?: number;
            /** @description MIG only: the instance's profile. */
            profile?: string;
            /** @description Shared GPUs only: at most this many holders. */
            shared_by?: number;
        };
        /** @description A request for GPUs and, once granted, the devices that belong to it. */
        Lease: {
            id: number;
            user: string;
            /** @description The group it is charged to, if any. */
            group: string | null;
            status: components["schemas"]["LeaseStatus"];
            /** @description The shape as requested (fields left at null are omitted). */
            shape: components["schemas"]["Shape"];
            profile: string | null;
            label: string;
            /** @description The higher of the user's and the group's quota priority at request time. */
            priority: number;
            /** @description GPU units held (or, while queued, the estimate charged against concurrent limits). */
            units: number;
            /**
             * @description Node of the devices once granted; for a lease on several nodes (`shape.nodes`
             *     over 1) the nodes joined with commas (`gpu1,gpu2`), each device naming its own.
             */
            node: string | null;
            devices: components["schemas"]["Device"][];
            /** @description True when any of its devices is simulated. */
            simulated: boolean;
            /** @description 1-based place in the queue while queued, else null. */
            position: number | null;
            /** Format: date-time */
            requested_at: string;
            /** Format: date-time */
            granted_at: string | null;
            /** Format: date-time */
            ended_at: string | null;
            /** @description Why it ended, e.g. `released by alice` or the quota that refused it. */
            end_reason: string | null;
            /** @description GPU-hours used so far (units × hours held). */
            gpu_hours: number;
            /** @description Credits per GPU-hour of its GPU model when granted (null until then); a later rate change leaves it. */
            rate: number | null;
            /**
             * @description The capacity tier: `guaranteed`, or `spot` (preemptible).
             * @enum {string}
             */
            tier: "guaranteed" | "spot";
            /** @description The tier's factor on the rate (1: none; spot: the spot discount). */
            discount: number;
            /** @description Charged so far: `gpu_hours` × `rate` × `discount`. */
            credits: number;
            /**
             * @description Set once the scheduler has asked this lease's work to stop because guaranteed
             *     work needs its devices: when (`notice_at`) and by when it must be gone
             *     (`deadline`); past the deadline its holder stops the work and releases it
             *     (`end_reason` `preempted`). Null otherwise.
             */
            preemption: components["schemas"]["Preemption"] | null;
            /** @description The group whose unused share it runs on, if borrowed. */
            borrowed_from: string | null;
            /**
             * @description The latest GPU activity the lease's server reported, or null (none yet, not
             *     active, or forgotten by a service restart). On the answers of `/leases`,
             *     `/leases/{id}` and `/me`; not on queue entries.
             */
            activity?: components["schemas"]["Activity"] | null;
            /**
             * @description Set while GPU-idle reclaim has warned that this notebook server's lease will be
             *     released and its server stopped; null otherwise. On the answers of `/leases`,
             *     `/leases/{id}` and `/me`.
             */
            idle_warning?: components["schemas"]["IdleWarning"] | null;
            /**
             * @description While the lease is queued: why it waits, when it may be granted and what is
             *     free instead; null otherwise. On the answers of `/leases`, `/leases/{id}` and
             *     `/me`, and on the caller's own entries of `/queue` (every entry for admins).
             */
            waiting?: components["schemas"]["Waiting"] | null;
        };
        Preemption: {
            /** Format: date-time */
            notice_at: string;
            /** Format: date-time */
            deadline: string;
        };
        /**
         * @description Why a queued request waits. Computed when asked, from the pool, the queue, the
         *     quotas and the ledger as they are at the time of the answer.
         */
        Waiting: {
            /**
             * @description `pool_busy`: no devices of this shape are free now (nor together on one node,
             *     for several whole GPUs); `quota_limit`: a quota of the user or the group no
             *     longer allows it (it is refused when its turn comes unless that changes);
             *     `queue_order`: requests of higher priority or older come first (the queue is
             *     served strictly in order); `reserved`: the free devices of this shape are
             *     reserved for another group, in a window open now or one the request would
             *     still run into (see `/api/v1/reservations`).
             * @enum {string}
             */
            reason: "pool_busy" | "quota_limit" | "queue_order" | "reserved";
            /** @description The reason for people, e.g. "all 4 H100 GPUs are held; 2 requests ahead of you" or "group cs101 uses 8 of its 8 GPU units…". */
            message: string;
            /** @description 1-based place in the queue. */
            position: number;
            estimate: components["schemas"]["WaitEstimate"];
            /** @description Shapes with devices free now that the user's quotas allow on top of what they run now (none while other requests would be served first). */
            alternatives: components["schemas"]["WaitAlternative"][];
            /** @description All of it in one line, e.g. "Queued at position 2: all 4 H100 GPUs are held; expected by 14:20 UTC (from running leases' stated hours). Free now: 7 MIG 1g.5gb slices". */
            summary: string;
        };
        /**
         * @description The earliest time the request could be granted if no new request came: the queue
         *     replayed on the pool as running leases end, each at its stated `hours` where
         *     given, else after the median length of ended leases of its shape over the last
         *     14 days that ran longer than it has so far.
         */
        WaitEstimate: {
            /**
             * Format: date-time
             * @description The estimated time; null when there is no estimate (the leases in the way state no hours and have no recent history, or a quota holds the request).
             */
            at: string | null;
            /**
             * @description What the estimate rests on: `hours` (running leases' stated hours), `history` (lengths of recent leases), `mixed` (both), `none` (no estimate).
             * @enum {string}
             */
            basis: "hours" | "history" | "mixed" | "none";
            /** @description For people: "expected by 14:20 UTC (from running leases' stated hours)" or "no estimate". */
            message: string;
        };
        /** @description A shape with devices free now that the user's quotas allow. */
        WaitAlternative: {
            shape: components["schemas"]["Shape"];
            /** @description How many of its devices (whole GPUs, MIG instances, shared seats) are free now. */
            free: number;
            /** @description GPU units it would be charged (the most any fitting device costs). */
            units: number;
            /** @description True when any of those devices is simulated. */
            simulated: boolean;
            /** @description For people: "7 MIG 1g.5gb slices free now". */
            message: string;
        };
        /** @description A warning that a notebook server whose GPUs stay idle will be stopped. */
        IdleWarning: {
            /**
             * Format: date-time
             * @description When the GPUs (and kernels and terminals) were last busy.
             */
            since: string;
            /**
             * Format: date-time
             * @description When the lease will be released and its server stopped, unless it is busy again or kept.
             */
            reclaim_at: string;
            /** @description Seconds its user may keep it for (`POST /api/v1/leases/{id}/keep`), within its rule's limit. */
            can_keep_for: number[];
        };
        /** @description Body of `POST /api/v1/leases/{id}/keep`. */
        KeepRequest: {
            /** @description Seconds to keep the lease from idle reclaim: at least 60 and at most the lease's rule's `max_keep_s`. */
            seconds: number;
        };
        /** @description Percent; null where the device does not report it (a MIG slice without GPM metrics), never 0 for unknown. */
        Percent: number | null;
        /** @description Body of `PUT /api/v1/leases/{id}/devices`, the GPU indices an engine gave the lease's work on its node. */
        LeasePlacement: {
            indices: components["schemas"]["GpuIndices"];
        };
        /** @description GPU indices on the lease's node, each once, as many as the lease holds. */
        GpuIndices: number[];
        /** @description Body of `POST /api/v1/leases/{id}/activity`, the lease's activity over the last window. */
        ActivityReport: {
            /** @description Seconds the summary covers. */
            window_s: number;
            utilization_mean_pct?: components["schemas"]["Percent"];
            utilization_max_pct?: components["schemas"]["Percent"];
            /** @description GPU memory in use by the lease (MB). */
            memory_used_mb: number;
            /** @description When a device was last busy above the server's threshold, an ISO 8601 date-time (UTC when it names no zone); null when the server has not seen it busy. */
            last_active_at?: string | null;
            devices?: components["schemas"]["DeviceActivityReports"];
            /** @description Kernels of the server executing code when it reported (null or absent: unknown). Counts as activity for idle reclaim. */
            busy_kernels?: number | null;
            /** @description Terminals open on the server when it reported (null or absent: unknown). Counts as activity for idle reclaim. */
            terminals?: number | null;
        };
        /**
         * @description The lease's devices over the window (default none), each at most once.
         * @default []
         */
        DeviceActivityReports: components["schemas"]["DeviceActivityReport"][];
        /** @description One device of the lease over the window. */
        DeviceActivityReport: {
            /** @description The device's UUID as in the lease's `devices`. */
            uuid: string;
            utilization_mean_pct?: components["schemas"]["Percent"];
            utilization_max_pct?: components["schemas"]["Percent"];
            memory_used_mb: number;
        };
        DeviceActivity: {
            uuid: string;
            utilization_mean_pct: number | null;
            utilization_max_pct: number | null;
            memory_used_mb: number;
        };
        /** @description The latest activity summary of an active lease, as the service keeps it. */
        Activity: {
            window_s: number;
            utilization_mean_pct: number | null;
            utilization_max_pct: number | null;
            memory_used_mb: number;
            /** Format: date-time */
            last_active_at: string | null;
            /**
             * Format: date-time
             * @description When the service received the report.
             */
            reported_at: string;
            /** @description Seconds since `last_active_at`, at the time of the answer (by the service's clock); null when the server has not seen the lease busy. */
            idle_s: number | null;
            /** @description Kernels executing code at the report; null when the server did not say. */
            busy_kernels: number | null;
            /** @description Terminals open at the report; null when the server did not say. */
            terminals: number | null;
            devices: components["schemas"]["DeviceActivity"][];
        };
        /** @description One held device's part of its lease's activity, with the lease's times. */
        HolderActivity: {
            window_s: number;
            utilization_mean_pct: number | null;
            utilization_max_pct: number | null;
            /** @description This device's memory in use (MB). */
            memory_used_mb: number;
            /** Format: date-time */
            last_active_at: string | null;
            /** Format: date-time */
            reported_at: string;
            idle_s: number | null;
            busy_kernels: number | null;
            terminals: number | null;
        };
        LeaseList: {
            leases: components["schemas"]["Lease"][];
        };
        /** @description A queued request of another user, as non-admins see it. */
        QueueEntry: {
            position: number;
            id: null;
            user: null;
            units: number;
            shape: components["schemas"]["Shape"];
            /** Format: date-time */
            requested_at: string;
        };
        Queue: {
            length: number;
            queue: (components["schemas"]["Lease"] | components["schemas"]["QueueEntry"])[];
        };
        /** @description Who holds a device slot; lease, user and group are null for other users' leases unless the caller is an admin. */
        Holder: {
            lease: number | null;
            user: string | null;
            group: string | null;
            units: number;
            /** @description What the holder's server last reported of this device (a GPU, a MIG instance, or one seat of a shared GPU), with the lease's times; null when it sent no report (or its report left this device out), and for other users' leases unless the caller is an admin. */
            activity: components["schemas"]["HolderActivity"] | null;
        };
        MigInstance: {
            uuid: string;
            profile: string;
            memory_mb: number;
            /** @description Compute slices of the GPU this instance spans. */
            slices: number;
            holder: components["schemas"]["Holder"] | null;
            /** @description Who holds this instance outside gpuhub, in words; null when nothing does. It is never granted then. */
            held_outside: string | null;
        };
        PoolGpu: {
            uuid: string;
            index: number;
            model: string;
            memory_mb: number;
            /**
             * @description Granted whole, by MIG slice, or time-sliced.
             * @enum {string}
             */
            mode: "exclusive" | "mig" | "shared";
            /** @description Holders a shared GPU takes (1 otherwise). */
            shares: number;
            simulated: boolean;
            /** @description UUIDs of GPUs of the same node linked to this one by NVLink. */
            nvlink_peers: string[];
            /**
             * @description Who holds this GPU outside gpuhub, in words ("Slurm job 42 (outside gpuhub)": a
             *     Slurm job that gpuhub did not submit); null when nothing does. Such a GPU is
             *     `busy`, never granted and not counted in `units_free`.
             */
            held_outside: string | null;
            /** @enum {string} */
            state: "free" | "partial" | "busy";
            /** @description Exclusive and shared GPUs only. */
            holders?: components["schemas"]["Holder"][];
            /** @description MIG GPUs only. */
            mig_instances?: components["schemas"]["MigInstance"][];
        };
        PoolNode: {
            name: string;
            simulated: boolean;
            /**
             * @description Whether the node takes new leases. False where its resource manager gives it no
             *     new work (Slurm: down, drained, not responding); its running leases stay, and its
             *     free devices do not count in `units_free`.
             */
            usable: boolean;
            /**
             * @description The inventory source's word for the node's state and why ("IDLE+DRAIN: disk
             *     replacement" from Slurm); empty where the source has none.
             */
            state: string;
            gpus: components["schemas"]["PoolGpu"][];
        };
        Pool: {
            simulated: boolean;
            /** @description GPU units of the pool (one per GPU). */
            units_total: number;
            /**
             * @description GPU units a new lease could get now: not held by a lease, not held outside
             *     gpuhub, and not on a node that takes no new leases.
             */
            units_free: number;
            queue_length: number;
            nodes: components["schemas"]["PoolNode"][];
        };
        /**
         * @description What a user or group may hold; a null field means no limit on that axis. The same
         *     object is the body of `PUT /api/v1/quotas/...` and `GpuhubService.default_user_quota`.
         */
        QuotaSpec: {
            /**
             * @description Concurrent GPU units (whole GPU 1, MIG slice its share of slices, shared GPU 1/k), queued requests included.
             * @default null
             */
            max_units: number | null;
            /**
             * @description GPU-hours per `period`.
             * @default null
             */
            gpu_hours: number | null;
            /**
             * @description Credits per `period` (GPU-hours × the rates of their models).
             * @default null
             */
            credits: number | null;
            /**
             * @description The budget window of `gpu_hours` and `credits`: UTC day, week from Monday, calendar month, or `term_start`..`term_end`.
             * @default week
             * @enum {string}
             */
            period: "day" | "week" | "month" | "term";
            /**
             * Format: date
             * @description First day of the term (period `term` only).
             * @default null
             */
            term_start: string | null;
            /**
             * Format: date
             * @description Day the term ends, 00:00 UTC, after `term_start` (period `term` only).
             * @default null
             */
            term_end: string | null;
            /**
             * @description Globs over shape labels `gpu`, `mig:<profile>`, `shared`; null allows all.
             * @default null
             */
            allowed_shapes: string[] | null;
            /**
             * @description Globs over spawner profile names; null allows all.
             * @default null
             */
            allowed_profiles: string[] | null;
            /**
             * @description Queue priority; a lease gets the higher of its user's and its group's.
             * @default 0
             */
            priority: number;
            /**
             * @description Group quotas only: concurrent GPU units each member may hold through the group.
             * @default null
             */
            per_user_max_units: number | null;
            /**
             * @description Concurrent GPU units of spot (preemptible) leases, the spot allowance; spot leases do not count against `max_units`.
             * @default null
             */
            spot_max_units: number | null;
            /**
             * @description GPU-hours of spot leases per `period`; they do not count against `gpu_hours`. `credits` pay for both tiers.
             * @default null
             */
            spot_gpu_hours: number | null;
            /**
             * @description Group quotas only, with `max_units`: the groups naming the same cohort lend each
             *     other their unused `max_units`. A request past the group's own share borrows from
             *     the cohort's group with the most unused units (not a notebook server's); borrowed
             *     work is preemptible, and the lender's members take their share back first.
             * @default null
             */
            cohort: string | null;
            /**
             * @description Group quotas only; the group's weight in fair share (default its `max_units`, else 1). Groups that used less of their weight's share of decayed GPU-hours are served first, after priority.
             * @default null
             */
            fair_share: number | null;
            /**
             * @description Group quotas in a cohort only; GPU units the group may borrow at once (null no cap).
             * @default null
             */
            borrow_limit: number | null;
            /**
             * @description Group quotas in a cohort only; GPU units of its unused share the group lends at once (null no cap).
             * @default null
             */
            lend_limit: number | null;
        };
        /** @description A `QuotaSpec` for a user; `per_user_max_units`, `cohort`, `borrow_limit` and `lend_limit` are for group quotas only. */
        UserQuotaSpec: components["schemas"]["QuotaSpec"] & {
            per_user_max_units?: null;
            cohort?: null;
            borrow_limit?: null;
            lend_limit?: null;
            fair_share?: null;
        };
        /** @description A quota with what is in use and left now. The `gpu_hours_*` (`credits_*`, `spot_gpu_hours_*`) and `period*` fields are present when the quota has `gpu_hours` (`credits`, `spot_gpu_hours`). */
        QuotaStatus: {
            /** @enum {string} */
            kind: "user" | "group";
            name: string;
            /** @description The quota; null when the user has none and there is no default (unlimited). */
            quota: components["schemas"]["QuotaSpec"] | null;
            /** @description GPU units held by active leases. */
            units_active: number;
            /** @description GPU units of queued requests. */
            units_queued: number;
            /** @description GPU units held by active spot leases. */
            spot_units_active: number;
            /** @description Spot GPU-hours used in the current period. */
            spot_gpu_hours_used?: number;
            spot_gpu_hours_left?: number;
            /** @description A group in a cohort: GPU units it borrows from others now. */
            borrowed_units?: number;
            /** @description A group in a cohort: GPU units of its share others borrow now. */
            lent_units?: number;
            /** @description GPU-hours used in the current period. */
            gpu_hours_used?: number;
            gpu_hours_left?: number;
            /** @description Credits charged in the current period. */
            credits_used?: number;
            credits_left?: number;
            /** Format: date-time */
            period_start?: string;
            /** Format: date-time */
            period_end?: string;
            /** @description The period for people, e.g. `this week (resets Monday 00:00 UTC)`. */
            period?: string;
            /** @description `GET /api/v1/quotas/users/{name}` only: true when this is the default user quota. */
            default?: boolean;
        };
        QuotaList: {
            /** @description Every user and group quota, with its use. */
            quotas: components["schemas"]["QuotaStatus"][];
            /** @description The quota of users who have none of their own; null for unlimited. */
            default_user_quota: components["schemas"]["QuotaSpec"] | null;
        };
        /** @description What a lease request would get now. */
        Preview: {
            /** @enum {string} */
            outcome: "grant" | "queue" | "refuse";
            /** @description For people, e.g. "3 of 8 H100 GPUs free", "2 requests ahead of you", or the refusal. */
            message: string;
            /**
             * @description With `refuse`, the error code the request would get.
             * @enum {string}
             */
            error?: "invalid" | "forbidden" | "quota_exceeded" | "unsatisfiable";
            /** @description Free devices (or shared seats) of this shape. */
            free: number;
            /** @description All devices (or shared seats) of this shape. */
            total: number;
            simulated: boolean;
            /** @description Queued requests that would go first. */
            ahead: number | null;
            /** @description GPU units the request would be charged. */
            units: number | null;
            /** @description The group it would be charged to. */
            group?: string | null;
        };
        /** @description What a user may ask for now (`GET /api/v1/me/options`). */
        Options: {
            user: string;
            shapes: components["schemas"]["ShapeOption"][];
            profiles: components["schemas"]["ProfileOption"][];
            jobs: components["schemas"]["JobOptions"];
            queue_length: number;
            spot: components["schemas"]["SpotPolicy"];
        };
        /** @description Whether spot (preemptible) capacity is offered here, its price and how it is taken back. */
        SpotPolicy: {
            enabled: boolean;
            /** @description The share of the rate a spot GPU-hour costs, e.g. 0.3. */
            discount: number;
            /** @description Seconds from a preemption notice to the deadline, to checkpoint. */
            grace_s: number;
            /** @description A spot lease is never preempted younger than this. */
            min_runtime_s: number;
        };
        /** @description The limits of jobs here. */
        JobOptions: {
            max_runtime_s: components["schemas"]["RuntimeLimits"];
            /** @description Whether recurring job definitions are taken. */
            schedules: boolean;
        };
        /** @description A job's maximum runtime in seconds. `default` applies to a job that states none (null where this service runs no jobs). */
        RuntimeLimits: {
            min: number;
            default: number | null;
            max: number | null;
        };
        /** @description A shape the pool can give, the models behind it, and the preview of asking for it now. */
        ShapeOption: {
            shape: components["schemas"]["Shape"];
            /** @description The quota label: `gpu`, `mig:<profile>` or `shared`. */
            label: string;
            /** @description For people, e.g. "2 whole GPUs". */
            text: string;
            models: string[];
            /** @description For people, e.g. "H100-80GB or A100-80GB". */
            models_text: string;
            /** @enum {string} */
            outcome: "grant" | "queue" | "refuse";
            /** @description As the preview's. */
            message: string | null;
            free: number | null;
            total: number | null;
            ahead: number | null;
            simulated: boolean;
            /** @description What it costs per hour (the lowest and highest over its models), or null. */
            credits_per_hour: components["schemas"]["CreditRange"] | null;
            /** @description For people, e.g. "≈ 2 credits/h" or "0.5–2 credits/h". */
            credits_text: string | null;
        };
        CreditRange: {
            min: number;
            max: number;
        };
        /** @description A spawn profile open to the user. */
        ProfileOption: {
            name: string;
            display_name: string;
            description: string;
            image: string | null;
            /** @description The GPU shape; null for a CPU-only profile (no GPU, no lease, no quota). */
            shape: components["schemas"]["Shape"] | null;
            /** @description For people, e.g. "1 whole GPU", or "no GPU". */
            text: string;
            models: string[];
            models_text: string;
            gpu_counts: number[];
            /**
             * @description The most nodes a job of this profile may span (`JobRequest.nodes`), each with
             *     the job's GPU count; 1 where the profile (its `max_nodes`, default 1) or the
             *     site's job executor (only Slurm runs multi-node jobs) allows no multi-node jobs.
             */
            max_nodes: number;
            default: boolean;
            /** @description What it costs per hour at its default GPU count (the lowest and highest over its models), or null. */
            credits_per_hour: components["schemas"]["CreditRange"] | null;
            /** @description For people, e.g. "≈ 2 credits/h" or "0.5–2 credits/h". */
            credits_text: string | null;
            /** @description What one GPU (or its slice or seat) of it costs per hour, for other counts. */
            credits_per_gpu_hour: components["schemas"]["CreditRange"] | null;
        };
        Me: {
            name: string;
            groups: string[];
            /** @description Whether the caller has the `custom:gpuhub:admin` scope. */
            admin: boolean;
            /** @description The user's own quota (or the default), then each group's that has one. */
            quotas: components["schemas"]["QuotaStatus"][];
            /** @description Active leases. */
            leases: components["schemas"]["Lease"][];
            /** @description Queued requests, with their positions. */
            queued: components["schemas"]["Lease"][];
        };
        RateChange: {
            /** @description Credits per GPU-hour of one whole GPU of the model. */
            credits_per_gpu_hour: number;
        };
        Rate: {
            model: string;
            credits_per_gpu_hour: number;
            /**
             * @description Where the rate comes from: an admin's (`PUT /rates/{model}`), `GpuhubService.rates`, or `GpuhubService.default_rate`.
             * @enum {string}
             */
            source: "admin" | "configuration" | "default";
            /** @description The admin who set it (source `admin`). */
            updated_by: string | null;
            /** Format: date-time */
            updated_at: string | null;
        };
        RateCard: {
            /** @description `credits per GPU-hour`. */
            unit: string;
            /** @description The rate of models neither configuration nor an admin names. */
            default_credits_per_gpu_hour: number;
            /** @description Each model of the pool, and any model an admin priced. */
            rates: components["schemas"]["Rate"][];
        };
        /** @description What one user was charged for one GPU model at one rate and tier, through one group (or none). */
        StatementRow: {
            group: string | null;
            user: string;
            model: string;
            /** @description The capacity tier: `guaranteed`. */
            tier: string;
            /** @description The rate in force when those leases were granted. */
            credits_per_gpu_hour: number;
            /** @description The tier's factor on the rate (1: none). */
            discount: number;
            gpu_hours: number;
            /** @description `gpu_hours` × `credits_per_gpu_hour` × `discount`. */
            credits: number;
            leases: number;
        };
        Statement: {
            /** Format: date-time */
            start: string;
            /** Format: date-time */
            end: string;
            /** @description The user it is for; null for everyone's (admins). */
            user: string | null;
            group: string | null;
            rows: components["schemas"]["StatementRow"][];
            total_gpu_hours: number;
            total_credits: number;
        };
        /** @description GPU-hours of one (day or week or month, user, group) combination; only the `by` columns are present. */
        UsageRow: {
            /**
             * Format: date
             * @description A UTC day.
             */
            day?: string;
            /**
             * Format: date
             * @description A week, named by its Monday (weeks start Monday 00:00 UTC).
             */
            week?: string;
            /** @description A UTC month, `YYYY-MM`. */
            month?: string;
            user?: string;
            group?: string | null;
            gpu_hours: number;
            /** @description What those GPU-hours were charged (see `Statement`). */
            credits: number;
            /** @description Leases that contributed. */
            leases: number;
        };
        Usage: {
            /** Format: date-time */
            start: string;
            /** Format: date-time */
            end: string;
            by: ("day" | "week" | "month" | "user" | "group")[];
            rows: components["schemas"]["UsageRow"][];
            total_gpu_hours: number;
        };
        /** @description The weeks to replay and the change proposed; at least one quota or rate change. */
        SimulationRequest: {
            /**
             * @description The last this many weeks of the ledger.
             * @default 2
             */
            weeks: number;
            /** @description Quotas proposed, each over the quota as it is; at most 50. */
            quotas?: components["schemas"]["QuotaChange"][];
            /** @description Rates proposed; at most 50. */
            rates?: components["schemas"]["ProposedRate"][];
        };
        /**
         * @description A user's or group's quota as proposed: the fields in `set` (at least one) over the
         *     quota as it is now (a user's own, else the default user quota; a group without one
         *     starts from an empty quota), as `gpuhub quota set` does. The merged quota must be a
         *     valid `QuotaSpec`; group-only fields are refused for users.
         */
        QuotaChange: {
            /** @enum {string} */
            kind: "user" | "group";
            name: components["schemas"]["Name"];
            set: components["schemas"]["QuotaSpec"];
        };
        ProposedRate: {
            /** @description A GPU model of the pool, or a part of its name that names every such model (`H100`), as a configured rate's key does. */
            model: string;
            credits_per_gpu_hour: number;
        };
        /** @description What became of some requests in one replay. Waits are seconds; a wait still going on at the end counts up to then. */
        SimulationStats: {
            /** @description Requests made in the window. */
            requests: number;
            granted: number;
            /** @description Refused for good (by the scheduler, or by a quota until the request gave up). */
            refused: number;
            /** @description Gave up while queued, when they did in fact. */
            withdrawn: number;
            waiting_at_end: number;
            mean_wait_s: number | null;
            p95_wait_s: number | null;
            gpu_hours: number;
            credits: number;
        };
        /** @description One user's (`user`) or one group's (`group`) requests in both replays. */
        SimulationRow: {
            user?: string;
            group?: string;
            current: components["schemas"]["SimulationStats"];
            proposed: components["schemas"]["SimulationStats"];
        };
        /** @description One field the proposal changes: a quota's (`kind` user or group) or a rate (`kind` rate, `name` the model). */
        SimulationChange: {
            /** @enum {string} */
            kind: "user" | "group" | "rate";
            name: string;
            field: string;
            /** @description The value in force; null where the user or group had no quota. */
            current: unknown;
            /** @description The value proposed. */
            proposed: unknown;
        };
        SimulationMover: {
            user: string;
            /** @description Proposed minus current mean wait, in seconds. */
            mean_wait_change_s: number;
            p95_wait_change_s: number;
            refused_change: number;
        };
        Simulation: {
            /** Format: date-time */
            start: string;
            /** Format: date-time */
            end: string;
            weeks: number;
            /** @description Leases replayed (those from before the window included). */
            leases: number;
            /** @description Requests made in the window, which the numbers count. */
            counted: number;
            changes: components["schemas"]["SimulationChange"][];
            current: components["schemas"]["SimulationStats"];
            proposed: components["schemas"]["SimulationStats"];
            users: components["schemas"]["SimulationRow"][];
            groups: components["schemas"]["SimulationRow"][];
            /** @description Users whose mean wait grew by a second or more, or who were refused more often; the largest change first. */
            waited_longer: components["schemas"]["SimulationMover"][];
            waited_shorter: components["schemas"]["SimulationMover"][];
            /** @description Seconds the two replays took. */
            elapsed_s: number;
        };
        CohortSpec: {
            /** @description Users to add to the group (created first when the hub lacks them), at most 2000; members not listed stay. */
            members?: components["schemas"]["Name"][];
            /** @description The group's quota, as in `PUT /api/v1/quotas/groups/{name}`; null or absent leaves it as it is. */
            quota?: components["schemas"]["QuotaSpec"] | null;
            /**
             * @description Create users the hub lacks; false refuses the request instead (400, `error: no_such_user`, naming them).
             * @default true
             */
            create_users: boolean;
        };
        CohortMembers: {
            /** @description 1 to 2000 users to add. */
            users: components["schemas"]["Name"][];
            /**
             * @description As in `CohortSpec`.
             * @default true
             */
            create_users: boolean;
        };
        /** @description What a cohort request did. `group_created` and `quota` only on `PUT`. */
        CohortChange: {
            name: string;
            /** @description Whether the JupyterHub group was created now. */
            group_created?: boolean;
            /** @description Users the hub did not have, created now. */
            users_created: string[];
            /** @description Users added to the group now. */
            members_added: string[];
            /** @description All members now. */
            members: string[];
            /** @description The group's quota with its use; null when the group has none. */
            quota?: components["schemas"]["QuotaStatus"] | null;
        };
        CohortRemoval: {
            name: string;
            members_removed: string[];
            /** @description All members now. */
            members: string[];
        };
        Cohort: {
            name: string;
            members: string[];
            /** @description The group's quota with its use; null when the group has none. */
            quota: components["schemas"]["QuotaStatus"] | null;
            usage: components["schemas"]["CohortUsage"];
        };
        CohortSummary: {
            name: string;
            /** @description False for a group with a quota that the hub no longer has. */
            in_hub: boolean;
            members: string[];
            /** @description The group's quota with its use; null when the group has none. */
            quota: components["schemas"]["QuotaStatus"] | null;
        };
        /** @description GPU-hours charged to the group per user in the quota's current period, up to now. */
        CohortUsage: {
            /** Format: date-time */
            start: string;
            /** Format: date-time */
            end: string;
            /** @description For people, e.g. `this week (resets Monday 00:00 UTC)`. */
            period: string;
            /** @description GPU-hours charged to the group per user (former members too). */
            rows: components["schemas"]["UsageRow"][];
            total_gpu_hours: number;
        };
        /**
         * @description `queued` (its GPU request waits, or its next attempt waits out a retry's backoff),
         *     `starting` (GPUs granted, being started), `running`, then one of `succeeded`,
         *     `failed` (an error exit, out of memory, or it could not start), `cancelled`,
         *     `timed_out` (stopped at its maximum runtime), `node_failed` (the cluster ended it
         *     because its node failed; `reason` names the node and the cluster's reason),
         *     `preempted` (its lease was taken back for guaranteed work). A job whose attempt
         *     ends `failed`, `node_failed` or `preempted` runs again while its `retry` policy
         *     leaves a retry of that class; the status is final once none is left.
         * @enum {string}
         */
        JobStatus: "queued" | "starting" | "running" | "succeeded" | "failed" | "cancelled" | "timed_out" | "node_failed" | "preempted";
        /**
         * @description `guaranteed`: its GPUs stay until it ends. `spot`: idle capacity at the site's spot
         *     discount (see `/me/options`), counted against the spot allowance of the quotas;
         *     taken back with a notice when guaranteed work needs the GPUs (the job gets
         *     `$GPUHUB_PREEMPT_FILE` and SIGUSR1, a grace period to checkpoint, then SIGTERM),
         *     then run again from the queue. Refused (400, field `tier`) where spot is not offered.
         * @enum {string}
         */
        JobTier: "guaranteed" | "spot";
        /**
         * @description How often a job runs again after an attempt that ended in each failure class, and
         *     how long it waits first: `backoff_s`, doubled for each earlier retry of the same
         *     class, at most `backoff_max_s`. `cancelled` and `timed_out` are never retried.
         *     The job's folder and `$GPUHUB_OUTPUT_DIR` stay the same, so a job resumes from its
         *     own checkpoints; `$GPUHUB_ATTEMPT` says which attempt runs.
         */
        RetryPolicy: {
            /**
             * @description Retries after its lease was taken back (spot, or borrowed capacity), whatever the exit code.
             * @default 10
             */
            preempted: number;
            /**
             * @description Retries after its node failed under it.
             * @default 1
             */
            node_failed: number;
            /**
             * @description Retries after it exited with an error, was killed by a signal, or vanished.
             * @default 0
             */
            failed: number;
            /**
             * @description Retries after the engine says it ran out of memory (Docker, Slurm; a local process counts as `failed`).
             * @default 0
             */
            out_of_memory: number;
            /**
             * @description Seconds before the first retry of a class.
             * @default 30
             */
            backoff_s: number;
            /**
             * @description The longest wait before a retry; at least `backoff_s`.
             * @default 3600
             */
            backoff_max_s: number;
        };
        /** @description One run of a job, on one lease. */
        JobAttempt: {
            /** @description 1, 2, ... */
            attempt: number;
            status: components["schemas"]["JobStatus"];
            /**
             * @description The failure class it was retried for; null for the job's current (or last) attempt.
             * @enum {string|null}
             */
            failure: "preempted" | "node_failed" | "failed" | "out_of_memory" | null;
            /** @description Why it ended (or waits), a sentence. */
            reason: string | null;
            /** @description Its GPU lease; null while the attempt waits out its backoff. */
            lease_id: number | null;
            tier: components["schemas"]["JobTier"];
            /**
             * Format: date-time
             * @description Null if its lease was taken back before it started.
             */
            started_at: string | null;
            /** Format: date-time */
            ended_at: string | null;
            exit_code: number | null;
            /** @description GPU-hours of its lease. */
            gpu_hours: number;
            /** @description Credits of its lease (the spot discount applied). */
            credits: number;
        };
        /** @description A notebook's JSON (nbformat 4, as in an `.ipynb` file), validated with nbformat. */
        Notebook: Record<string, unknown> | null;
        /**
         * @description Values for the notebook's `parameters` cell (papermill): at most 100, named by
         *     Python identifiers, at most 64 KiB as JSON. Scripts take none.
         */
        JobParameters: Record<string, unknown>;
        /** @description Body of `POST /api/v1/jobs`. Exactly one of `notebook` (for an `.ipynb` path) and `script` (for a `.py` path). */
        JobRequest: {
            /**
             * @description The notebook or script, relative to the user's home (POSIX): not starting with
             *     `/` or `~`, no empty, `.` or `..` segment, no control characters or backslash,
             *     ending in `.ipynb` or `.py`.
             */
            path: string;
            notebook?: components["schemas"]["Notebook"];
            /** @description The script's source (at most 16 MiB). */
            script?: string | null;
            /** @description A spawner profile open to the user; default the user's default profile with a GPU (a CPU-only default is passed over). It gives the image, limits and shape; a CPU-only profile needs a `shape`. */
            profile?: string | null;
            /** @description GPU count, for a profile that offers several (`gpu_counts`). */
            gpus?: number | null;
            /**
             * @description Nodes the job spans, each with `gpus` (or the profile's count) whole GPUs;
             *     more than 1 needs a profile whose `max_nodes` allows it and an executor that
             *     runs multi-node jobs (Slurm). The job runs a script (or the notebook as a
             *     script) under torchrun on every node. Not with `shape`: a whole-GPU shape
             *     carries its own `nodes`.
             */
            nodes?: number | null;
            /** @description An explicit GPU shape instead of the profile's. */
            shape?: components["schemas"]["Shape"] | null;
            parameters?: components["schemas"]["JobParameters"];
            /** @description Stopped (SIGTERM, grace, kill) and `timed_out` after this many seconds of running. Default 86400. */
            max_runtime_s?: number | null;
            /** @description A name without control characters; default the path's stem. */
            name?: string | null;
            /** @description Submit for this user (admins only); a `Name`. */
            user?: string | null;
            tier?: components["schemas"]["JobTier"];
            /** @description Retries per failure class and their backoff; null or left out for the defaults of `RetryPolicy`. */
            retry?: components["schemas"]["RetryPolicy"] | null;
        };
        /** @description Body of `POST /api/v1/job-definitions`, a `JobRequest` with a schedule. */
        JobDefinitionRequest: {
            /** @description As in `JobRequest`. */
            path: string;
            notebook?: components["schemas"]["Notebook"];
            /** @description As in `JobRequest`. */
            script?: string | null;
            /** @description As in `JobRequest`. */
            profile?: string | null;
            /** @description As in `JobRequest`. */
            gpus?: number | null;
            /** @description As in `JobRequest`. */
            nodes?: number | null;
            /** @description As in `JobRequest`. */
            shape?: components["schemas"]["Shape"] | null;
            parameters?: components["schemas"]["JobParameters"];
            /** @description As in `JobRequest`. */
            max_runtime_s?: number | null;
            /** @description As in `JobRequest`. */
            name?: string | null;
            /** @description Create it for this user (admins only); a `Name`. */
            user?: string | null;
            tier?: components["schemas"]["JobTier"];
            /** @description As in `JobRequest`, for each run. */
            retry?: components["schemas"]["RetryPolicy"] | null;
            /** @description Cron schedule, five fields or a macro, in UTC unless prefixed with `CRON_TZ=<IANA zone>`, e.g. `0 2 * * *`, `*\/15 9-17 * * mon-fri`, `@daily` or `CRON_TZ=Europe/Berlin 30 6 * * mon-fri`. */
            schedule: string;
            /**
             * @description Created paused (no runs until resumed).
             * @default false
             */
            paused: boolean;
        };
        /** @description Body of `PATCH /api/v1/job-definitions/{id}`. */
        JobDefinitionPatch: {
            /** @description Pause (true) or resume (false). */
            paused: boolean;
        };
        /** @description A batch job and what became of it. */
        Job: {
            id: number;
            user: string;
            name: string;
            /** @description The notebook or script, relative to the home. */
            path: string;
            /** @enum {string} */
            kind: "notebook" | "script";
            status: components["schemas"]["JobStatus"];
            /** @description 1-based place of its GPU request in the queue while queued. */
            position: number | null;
            /** @description Why it waits or how it ended, a sentence. */
            reason: string | null;
            profile: string | null;
            /** @description The image (Docker executor); null for local processes. */
            image: string | null;
            /** @description The image's id at submit (`sha256:...`). */
            image_digest: string | null;
            shape: components["schemas"]["Shape"];
            /** @description The shape in a few words, e.g. `1x GPU`, or `2 nodes × 2x GPU` on several nodes. */
            shape_text: string;
            /** @description The parameters injected. */
            parameters: Record<string, unknown>;
            max_runtime_s: number;
            /** @description Its GPU lease (label `job:USER/ID`). */
            lease_id: number | null;
            /** @description Its lease's node once granted (a multi-node job's nodes joined with commas, `gpu1,gpu2`). */
            node: string | null;
            /** @description UUIDs of its devices once granted. */
            devices: string[];
            simulated: boolean;
            /** Format: date-time */
            created_at: string;
            /** Format: date-time */
            started_at: string | null;
            /** Format: date-time */
            ended_at: string | null;
            /** @description Seconds since it started (until it ended). */
            elapsed_s: number | null;
            /** @description GPU-hours of its leases, every attempt's (booked in the ledger). */
            gpu_hours: number;
            exit_code: number | null;
            /** @description Its folder in the home, e.g. `gpuhub-jobs/12-train`. */
            folder: string;
            /** @description The executed notebook in the home (notebooks only; null for a job on several nodes: it runs the notebook as a script and writes no executed notebook). */
            output_notebook: string | null;
            /** @description Where it runs: `local`, `docker`, ... */
            executor: string;
            /** @description The job definition that submitted it. */
            definition_id: number | null;
            tier: components["schemas"]["JobTier"];
            /** @description Its retry policy in full (null for jobs from before retries, which are not retried). */
            retry: components["schemas"]["RetryPolicy"] | null;
            /** @description The attempt it is on (or ended with): 1, then 2, ... after each retry. */
            attempt: number;
            /** @description Every attempt, oldest first; the last is the current one (the job's own status, times and lease). */
            attempts: components["schemas"]["JobAttempt"][];
            /**
             * Format: date-time
             * @description While queued between attempts: when the next one is asked for (its backoff ends).
             */
            next_attempt_at: string | null;
            /**
             * @description While it runs on a lease under a preemption notice: when the notice came and
             *     by when the job must be gone (it is stopped then); null otherwise.
             */
            preemption: components["schemas"]["Preemption"] | null;
        };
        JobList: {
            jobs: components["schemas"]["Job"][];
        };
        JobLog: {
            /** @description Where the text starts (bytes). */
            offset: number;
            /** @description Where to read on. */
            next_offset: number;
            text: string;
            /** @description The job has ended and there is nothing more to read. */
            complete: boolean;
        };
        /** @description A recurring job. */
        JobDefinition: {
            id: number;
            user: string;
            name: string;
            schedule: string;
            paused: boolean;
            /**
             * Format: date-time
             * @description Null while paused.
             */
            next_run_at: string | null;
            /** Format: date-time */
            last_run_at: string | null;
            last_job_id: number | null;
            /** @description Why the last run was refused, if it was. */
            last_error: string | null;
            /** Format: date-time */
            created_at: string;
            path: string;
            /** @enum {string} */
            kind: "notebook" | "script";
            profile: string | null;
            shape: components["schemas"]["Shape"];
            parameters: Record<string, unknown>;
            max_runtime_s: number;
        };
        JobDefinitionList: {
            definitions: components["schemas"]["JobDefinition"][];
        };
        /** @description Body of `POST /api/v1/reservations`. */
        ReservationRequest: {
            /** @description The JupyterHub group the devices are kept for (a `Name`; it must exist in the hub). */
            group: string;
            /** @description What is reserved; for whole GPUs leave `count` out of the shape (or give 1) and give the number as `count` below. */
            shape: components["schemas"]["Shape"];
            /** @description How many devices of the shape: whole GPUs, MIG slices, or shared GPUs (with all their seats). */
            count: number;
            /** @description Start of the first window, an ISO 8601 date and time such as `2026-12-08T14:00` (a wall time in `timezone`) or `2026-12-08T14:00+01:00`, from 1970 to 8999. */
            start: string;
            /** @description End of the first window, in the same form; after `start`, at most 7 days later. */
            end: string;
            /**
             * @description `weekly`: the window comes back every week at the same wall-clock time in `timezone` (across daylight-saving changes).
             * @default once
             * @enum {string}
             */
            repeat: "once" | "weekly";
            /** @description An IANA time zone name such as `UTC` or `Europe/Berlin`; default (or null) the service's `reservation_timezone`. */
            timezone?: string | null;
            /**
             * @description What it is for.
             * @default
             */
            note: string;
        };
        ReservationWindow: {
            /** Format: date-time */
            start: string;
            /** Format: date-time */
            end: string;
        };
        /** @description One reserved device (a whole GPU, a MIG instance, or a shared GPU). */
        ReservationDevice: {
            /** @description The GPU's UUID, or the MIG instance's (`MIG-...`). */
            uuid: string;
            node: string;
            /** @description For people, e.g. `GPU 0 slice 1g.10gb #2`. */
            name?: string;
        };
        /** @description Devices kept for a group in a time window, once or weekly. */
        Reservation: {
            id: number;
            group: string;
            shape: components["schemas"]["Shape"];
            count: number;
            devices: components["schemas"]["ReservationDevice"][];
            /** @enum {string} */
            repeat: "once" | "weekly";
            /** @description The IANA time zone its wall times are in. */
            timezone: string;
            /**
             * Format: date-time
             * @description Start of the first window.
             */
            start: string;
            /**
             * Format: date-time
             * @description End of the first window.
             */
            end: string;
            /**
             * @description `open`: a window is open now; `upcoming`: one comes later; `ended`: none will.
             * @enum {string}
             */
            state: "open" | "upcoming" | "ended";
            /** @description The window open now, or null. */
            current: components["schemas"]["ReservationWindow"] | null;
            /** @description The next window that has not started, or null. */
            next: components["schemas"]["ReservationWindow"] | null;
            note: string;
            created_by: string;
            /** Format: date-time */
            created_at: string;
            /** @description For people, e.g. "8 MIG 1g.10gb slices reserved for cs101 on Tuesdays 14:00–16:00 UTC; open now until 16:00". */
            message: string;
        };
        ReservationList: {
            reservations: components["schemas"]["Reservation"][];
        };
    };
    responses: {
        /**
         * @description The request is malformed: a body that is not JSON or has unknown or invalid
         *     fields, a bad query parameter, or a request that must say which group it is for.
         *     `field` names the culprit where there is one.
         */
        BadRequest: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                /**
                 * @example {
                 *       "status": 400,
                 *       "error": "invalid",
                 *       "message": "shape.kind must be one of 'gpu', 'mig', 'shared'",
                 *       "field": "shape"
                 *     }
                 */
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description The request body is larger than 64 KiB (`error: too_large`); it is not read. */
        TooLarge: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                /**
                 * @example {
                 *       "status": 413,
                 *       "error": "too_large",
                 *       "message": "the request body is larger than 64 KiB",
                 *       "field": null
                 *     }
                 */
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description The request body is larger than 16 MiB (`error: too_large`); it is not read. */
        TooLargeJob: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                /**
                 * @example {
                 *       "status": 413,
                 *       "error": "too_large",
                 *       "message": "the request body is larger than 16 MiB",
                 *       "field": null
                 *     }
                 */
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description No valid token or login (`error: unauthenticated`); the answer has a `WWW-Authenticate` header. */
        Unauthenticated: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                /**
                 * @example {
                 *       "status": 401,
                 *       "error": "unauthenticated",
                 *       "message": "authentication required: log in, or send 'Authorization: token <JupyterHub token>'",
                 *       "field": null
                 *     }
                 */
                "application/json": components["schemas"]["Error"];
            };
        };
        /**
         * @description The caller may not do this: the token lacks the `access:services!service=gpuhub`
         *     scope, or the action needs `custom:gpuhub:admin` (`error: forbidden`).
         */
        Forbidden: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                /**
                 * @example {
                 *       "status": 403,
                 *       "error": "forbidden",
                 *       "message": "setting quotas needs the custom:gpuhub:admin scope (gpuhub admins)",
                 *       "field": null
                 *     }
                 */
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description No such lease (or not one the caller may see), or no such quota (`error: not_found`). */
        NotFound: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                /**
                 * @example {
                 *       "status": 404,
                 *       "error": "not_found",
                 *       "message": "no lease 42",
                 *       "field": null
                 *     }
                 */
                "application/json": components["schemas"]["Error"];
            };
        };
        /** @description JupyterHub has no such group (`error: not_found`, `field: name`); or, for a cohort's member, that user is not in it (`field: user`). */
        NoSuchGroup: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                /**
                 * @example {
                 *       "status": 404,
                 *       "error": "not_found",
                 *       "message": "JupyterHub has no group cs10l: check the name, or have it created (create=true; gpuhub quota set --create)",
                 *       "field": "name"
                 *     }
                 */
                "application/json": components["schemas"]["Error"];
            };
        };
        /**
         * @description JupyterHub did not answer, or refused a change because the gpuhub service's role
         *     lacks a scope (`admin:groups` or `admin:users`; `error: hub_error` or `hub_refused`).
         *     Nothing was changed by the step that failed; retry once the hub is back or the role fixed.
         */
        HubError: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                /**
                 * @example {
                 *       "status": 502,
                 *       "error": "hub_refused",
                 *       "message": "JupyterHub refused to change users ann, bo: the gpuhub service's role needs the admin:users scope (see docs/how-to/cohorts.md)",
                 *       "field": null
                 *     }
                 */
                "application/json": components["schemas"]["Error"];
            };
        };
        /**
         * @description Not enough devices of the shape are free of other reservations whose windows overlap
         *     this one's (`error: conflict`); the message says how many are and which reservation
         *     holds the rest.
         */
        ReservationConflict: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                /**
                 * @example {
                 *       "status": 409,
                 *       "error": "conflict",
                 *       "message": "only 3 of 7 MIG 1g.5gb slices are free of reservations whose windows overlap this one (reservation 2 for cs102 on Tuesdays 14:00–16:00 UTC holds 4); cannot reserve 5",
                 *       "field": "start"
                 *     }
                 */
                "application/json": components["schemas"]["Error"];
            };
        };
        /**
         * @description The pool could never meet the request, however long it waited: no node has that
         *     many GPUs of that model, or no GPU offers that MIG profile (`error: unsatisfiable`).
         */
        Unsatisfiable: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                /**
                 * @example {
                 *       "status": 422,
                 *       "error": "unsatisfiable",
                 *       "message": "no node has 9 whole GPUs (the most on one node is 4); ask for fewer GPUs or another model",
                 *       "field": "shape"
                 *     }
                 */
                "application/json": components["schemas"]["Error"];
            };
        };
    };
    parameters: {
        /**
         * @description A key the client makes for one lease request (a UUID, say) and sends again with
         *     every retry of it; scoped to the user the lease is for.
         */
        IdempotencyKey: string;
        /** @description The lease id. */
        LeaseId: number;
        /** @description The job id. */
        JobId: number;
        /** @description The reservation id. */
        ReservationId: number;
        /** @description The job definition id. */
        JobDefinitionId: number;
        /** @description A JupyterHub user name. */
        UserName: components["schemas"]["Name"];
        /** @description A JupyterHub group name. */
        GroupName: components["schemas"]["Name"];
    };
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    getService: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The service answers. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ServiceInfo"];
                };
            };
        };
    };
    getPool: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The pool now. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Pool"];
                };
            };
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
        };
    };
    getMe: {
        parameters: {
            query?: {
                /** @description Another user (needs the admin scope). */
                user?: components["schemas"]["Name"];
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description About the caller. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Me"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
        };
    };
    getMyOptions: {
        parameters: {
            query?: {
                /** @description Another user (needs the admin scope). */
                user?: components["schemas"]["Name"];
                /** @description Preview the shapes as asked with this profile (as a job of this server would be). */
                profile?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description What the caller may ask for. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Options"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
        };
    };
    previewLease: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["LeaseRequest"];
            };
        };
        responses: {
            /** @description The outcome. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Preview"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            413: components["responses"]["TooLarge"];
        };
    };
    listLeases: {
        parameters: {
            query?: {
                /** @description Only this user's leases (another user's needs the admin scope). */
                user?: components["schemas"]["Name"];
                /** @description Statuses to include; repeat the parameter for several. */
                status?: components["schemas"]["LeaseStatus"][];
                /** @description At most this many leases. */
                limit?: number;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The leases. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["LeaseList"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
        };
    };
    requestLease: {
        parameters: {
            query?: never;
            header?: {
                /**
                 * @description A key the client makes for one lease request (a UUID, say) and sends again with
                 *     every retry of it; scoped to the user the lease is for.
                 */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["LeaseRequest"];
            };
        };
        responses: {
            /**
             * @description A retry: the lease this `Idempotency-Key` made before, as it is now (active,
             *     queued, or ended).
             */
            200: {
                headers: {
                    /** @description The lease's URL. */
                    Location?: string;
                    /** @description `true`: this answer replays an earlier request's lease. */
                    "Idempotent-Replayed"?: "true";
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Lease"];
                };
            };
            /** @description The lease, active or queued. */
            201: {
                headers: {
                    /** @description The lease's URL. */
                    Location?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Lease"];
                };
            };
            /**
             * @description The request is malformed (see `BadRequest`), or the `Idempotency-Key` header is
             *     not 1-128 characters from `A-Z a-z 0-9 . _ : -` (`field: Idempotency-Key`).
             */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            401: components["responses"]["Unauthenticated"];
            /**
             * @description A quota forbids the request (`error: quota_exceeded`), or the caller may not make
             *     it: for another user without the admin scope, or through a group the user is
             *     not a member of (`error: forbidden`).
             */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description An admin asked for a `user` that JupyterHub does not know. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            413: components["responses"]["TooLarge"];
            /**
             * @description The pool could never meet the request (`error: unsatisfiable`, see
             *     `Unsatisfiable`), or its `Idempotency-Key` was used by this user for a different
             *     request (`error: idempotency_conflict`; the message names the key and its lease).
             */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "status": 422,
                     *       "error": "idempotency_conflict",
                     *       "message": "idempotency key 'spawn-7f3a' of alice was used for lease 17 with a different request; send a new key for a new request",
                     *       "field": "Idempotency-Key"
                     *     }
                     */
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    getLease: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The lease id. */
                id: components["parameters"]["LeaseId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The lease. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Lease"];
                };
            };
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
        };
    };
    endLease: {
        parameters: {
            query?: {
                /** @description Why the lease is ended (one line, kept in the ledger as its `end_reason`). */
                reason?: string;
            };
            header?: never;
            path: {
                /** @description The lease id. */
                id: components["parameters"]["LeaseId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The lease, now `released` or `cancelled`. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Lease"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
        };
    };
    reportLeaseActivity: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The lease id. */
                id: components["parameters"]["LeaseId"];
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "window_s": 30,
                 *       "utilization_mean_pct": 73.5,
                 *       "utilization_max_pct": 98,
                 *       "memory_used_mb": 21504,
                 *       "last_active_at": "2026-11-23T09:41:00+00:00",
                 *       "devices": [
                 *         {
                 *           "uuid": "GPU-5f2c1e7a-0000-4000-8000-000000000001",
                 *           "utilization_mean_pct": 73.5,
                 *           "utilization_max_pct": 98,
                 *           "memory_used_mb": 21504
                 *         }
                 *       ]
                 *     }
                 */
                "application/json": components["schemas"]["ActivityReport"];
            };
        };
        responses: {
            /** @description The summary as kept, with the time it was reported. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Activity"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            /** @description The lease is queued or has ended (`error: not_active`): only an active lease's activity is kept. */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "status": 409,
                     *       "error": "not_active",
                     *       "message": "lease 42 is released, not active: only an active lease's activity is kept",
                     *       "field": null
                     *     }
                     */
                    "application/json": components["schemas"]["Error"];
                };
            };
            413: components["responses"]["TooLarge"];
        };
    };
    placeLease: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The lease id. */
                id: components["parameters"]["LeaseId"];
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "indices": [
                 *         1,
                 *         3
                 *       ]
                 *     }
                 */
                "application/json": components["schemas"]["LeasePlacement"];
            };
        };
        responses: {
            /** @description The lease, on the devices it holds now. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Lease"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            /** @description The lease is queued or has ended (`error: not_active`): it holds no devices. */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "status": 409,
                     *       "error": "not_active",
                     *       "message": "lease 42 is released, not active: it holds no devices"
                     *     }
                     */
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    keepLease: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The lease id. */
                id: components["parameters"]["LeaseId"];
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "seconds": 3600
                 *     }
                 */
                "application/json": components["schemas"]["KeepRequest"];
            };
        };
        responses: {
            /** @description The lease, with `idle_warning` now null. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Lease"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            /** @description The lease is not active (`not_active`), or is a job's lease, which idle reclaim never stops (`not_reclaimable`). */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "status": 409,
                     *       "error": "not_reclaimable",
                     *       "message": "lease 42 is not held by a notebook server (label 'job:alice/7'): idle reclaim never stops it, so there is nothing to keep",
                     *       "field": null
                     *     }
                     */
                    "application/json": components["schemas"]["Error"];
                };
            };
            413: components["responses"]["TooLarge"];
        };
    };
    getQueue: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The queue. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Queue"];
                };
            };
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
        };
    };
    listQuotas: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description All quotas and the default user quota. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["QuotaList"];
                };
            };
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
        };
    };
    getUserQuota: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A JupyterHub user name. */
                name: components["parameters"]["UserName"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The quota and its use; `default` says whether it is the default quota. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["QuotaStatus"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
        };
    };
    setUserQuota: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A JupyterHub user name. */
                name: components["parameters"]["UserName"];
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "max_units": 2,
                 *       "gpu_hours": 40,
                 *       "period": "week"
                 *     }
                 */
                "application/json": components["schemas"]["UserQuotaSpec"];
            };
        };
        responses: {
            /** @description The quota now, with its use. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["QuotaStatus"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            413: components["responses"]["TooLarge"];
        };
    };
    deleteUserQuota: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A JupyterHub user name. */
                name: components["parameters"]["UserName"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Removed. */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
        };
    };
    getGroupQuota: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A JupyterHub group name. */
                name: components["parameters"]["GroupName"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The quota and its use. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["QuotaStatus"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
        };
    };
    setGroupQuota: {
        parameters: {
            query?: {
                /** @description `true` creates the JupyterHub group when the hub lacks it; `false` (the default) refuses such a group. */
                create?: "true" | "false";
            };
            header?: never;
            path: {
                /** @description A JupyterHub group name. */
                name: components["parameters"]["GroupName"];
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "max_units": 4,
                 *       "per_user_max_units": 0.5,
                 *       "gpu_hours": 300,
                 *       "period": "term",
                 *       "term_start": "2026-09-01",
                 *       "term_end": "2026-12-19",
                 *       "allowed_shapes": [
                 *         "mig:*",
                 *         "shared"
                 *       ]
                 *     }
                 */
                "application/json": components["schemas"]["QuotaSpec"];
            };
        };
        responses: {
            /** @description The quota now, with its use. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["QuotaStatus"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NoSuchGroup"];
            413: components["responses"]["TooLarge"];
            502: components["responses"]["HubError"];
        };
    };
    deleteGroupQuota: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A JupyterHub group name. */
                name: components["parameters"]["GroupName"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Removed. */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
        };
    };
    getUsage: {
        parameters: {
            query?: {
                /** @description Start, an ISO 8601 date or time such as `2026-11-01` or `2026-11-01T12:00Z` (UTC when no zone is given), from 1970 to 8999. Default 30 days before today, 00:00 UTC. */
                start?: string;
                /** @description End, in the same form, after `start`. Default now. */
                end?: string;
                /** @description Only this user (another user's needs the admin scope). */
                user?: components["schemas"]["Name"];
                /** @description Only leases charged to this group. */
                group?: components["schemas"]["Name"];
                /**
                 * @description Comma-separated columns to group by, some of `day`, `week`, `month`, `user`,
                 *     `group` (at most one of `day`, `week`, `month`), e.g. `user,week`. A week starts
                 *     Monday 00:00 UTC and is named by that Monday (`2026-11-23`); a month is `2026-11`.
                 */
                by?: string;
                /** @description `json` or `csv`. */
                format?: "json" | "csv";
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /**
             * @description The rows. With `format=csv`, a CSV file with the `by` columns, `gpu_hours` and
             *     `leases` (a header line first).
             */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Usage"];
                    "text/csv": string;
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
        };
    };
    listRates: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The rate card. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["RateCard"];
                };
            };
            401: components["responses"]["Unauthenticated"];
        };
    };
    setRate: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A GPU model of the pool, as the inventory names it, e.g. `H100-80GB`. */
                model: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "credits_per_gpu_hour": 2.5
                 *     }
                 */
                "application/json": components["schemas"]["RateChange"];
            };
        };
        responses: {
            /** @description The model's rate now. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Rate"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            413: components["responses"]["TooLarge"];
        };
    };
    unsetRate: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A GPU model of the pool, as the inventory names it, e.g. `H100-80GB`. */
                model: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The model's rate now. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Rate"];
                };
            };
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
        };
    };
    getStatement: {
        parameters: {
            query?: {
                /** @description Start, an ISO 8601 date or time such as `2026-11-01` (UTC when no zone is given), from 1970 to 8999. Default the first of this month, 00:00 UTC. */
                start?: string;
                /** @description End, in the same form, after `start`. Default now. */
                end?: string;
                /** @description Only this user (another user's needs the admin scope). */
                user?: components["schemas"]["Name"];
                /** @description Only leases charged to this group. */
                group?: components["schemas"]["Name"];
                /** @description `json` or `csv`. */
                format?: "json" | "csv";
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /**
             * @description The statement. With `format=csv`, a CSV file with the row fields (a header line
             *     first) and a last line whose `group` is `total`.
             */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Statement"];
                    "text/csv": string;
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
        };
    };
    simulate: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "weeks": 2,
                 *       "quotas": [
                 *         {
                 *           "kind": "group",
                 *           "name": "cs101",
                 *           "set": {
                 *             "max_units": 4
                 *           }
                 *         }
                 *       ],
                 *       "rates": [
                 *         {
                 *           "model": "H100",
                 *           "credits_per_gpu_hour": 2.5
                 *         }
                 *       ]
                 *     }
                 */
                "application/json": components["schemas"]["SimulationRequest"];
            };
        };
        responses: {
            /** @description The two replays side by side. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Simulation"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            /** @description Another simulation is running (`error: conflict`); try again when it has finished. */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            413: components["responses"]["TooLarge"];
        };
    };
    listCohorts: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The groups. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        cohorts: components["schemas"]["CohortSummary"][];
                    };
                };
            };
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            502: components["responses"]["HubError"];
        };
    };
    getCohort: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A JupyterHub group name. */
                name: components["parameters"]["GroupName"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The cohort. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Cohort"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NoSuchGroup"];
            502: components["responses"]["HubError"];
        };
    };
    setCohort: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A JupyterHub group name. */
                name: components["parameters"]["GroupName"];
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "members": [
                 *         "ann",
                 *         "bo",
                 *         "chen"
                 *       ],
                 *       "quota": {
                 *         "max_units": 8,
                 *         "per_user_max_units": 1,
                 *         "gpu_hours": 200,
                 *         "period": "week"
                 *       }
                 *     }
                 */
                "application/json": components["schemas"]["CohortSpec"];
            };
        };
        responses: {
            /** @description What was done, and the cohort now. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["CohortChange"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            413: components["responses"]["TooLarge"];
            502: components["responses"]["HubError"];
        };
    };
    addCohortMembers: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A JupyterHub group name. */
                name: components["parameters"]["GroupName"];
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "users": [
                 *         "dee",
                 *         "eli"
                 *       ],
                 *       "create_users": false
                 *     }
                 */
                "application/json": components["schemas"]["CohortMembers"];
            };
        };
        responses: {
            /** @description What was done, and the members now. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["CohortChange"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NoSuchGroup"];
            413: components["responses"]["TooLarge"];
            502: components["responses"]["HubError"];
        };
    };
    removeCohortMember: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description A JupyterHub group name. */
                name: components["parameters"]["GroupName"];
                /** @description The member to take out of the group (the user stays in the hub). */
                user: components["schemas"]["Name"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The members now. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["CohortRemoval"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NoSuchGroup"];
            502: components["responses"]["HubError"];
        };
    };
    listReservations: {
        parameters: {
            query?: {
                /** @description Only this group's reservations. */
                group?: components["schemas"]["Name"];
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The reservations. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ReservationList"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
        };
    };
    createReservation: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "group": "cs101",
                 *       "shape": {
                 *         "kind": "mig",
                 *         "profile": "1g.10gb"
                 *       },
                 *       "count": 8,
                 *       "start": "2026-12-08T14:00",
                 *       "end": "2026-12-08T16:00",
                 *       "repeat": "weekly",
                 *       "timezone": "UTC",
                 *       "note": "CS 101 lab"
                 *     }
                 */
                "application/json": components["schemas"]["ReservationRequest"];
            };
        };
        responses: {
            /** @description The new reservation; `Location` is its URL. */
            201: {
                headers: {
                    /** @description The reservation's URL path. */
                    Location?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Reservation"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            /** @description JupyterHub has no such group (`error: not_found`, `field: group`). */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "status": 404,
                     *       "error": "not_found",
                     *       "message": "JupyterHub has no group cs10l: check the name, or create the group first (gpuhub cohort create)",
                     *       "field": "group"
                     *     }
                     */
                    "application/json": components["schemas"]["Error"];
                };
            };
            409: components["responses"]["ReservationConflict"];
            413: components["responses"]["TooLarge"];
            422: components["responses"]["Unsatisfiable"];
            502: components["responses"]["HubError"];
        };
    };
    getReservation: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The reservation id. */
                id: components["parameters"]["ReservationId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The reservation. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Reservation"];
                };
            };
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
        };
    };
    deleteReservation: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The reservation id. */
                id: components["parameters"]["ReservationId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The reservation as it was. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Reservation"];
                };
            };
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
        };
    };
    listJobs: {
        parameters: {
            query?: {
                /** @description Only this user's jobs (another user's needs the admin scope). */
                user?: components["schemas"]["Name"];
                /** @description Statuses to include; repeat the parameter for several. */
                status?: components["schemas"]["JobStatus"][];
                /** @description At most this many jobs. */
                limit?: number;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The jobs. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["JobList"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
        };
    };
    submitJob: {
        parameters: {
            query?: never;
            header?: {
                /**
                 * @description A key the client makes for one lease request (a UUID, say) and sends again with
                 *     every retry of it; scoped to the user the lease is for.
                 */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["JobRequest"];
            };
        };
        responses: {
            /** @description A retry with the same `Idempotency-Key`: the job it made, as it is now. */
            200: {
                headers: {
                    /** @description The job's URL. */
                    Location?: string;
                    /** @description `true`: this answer replays an earlier request's job. */
                    "Idempotent-Replayed"?: "true";
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Job"];
                };
            };
            /** @description The job, queued. */
            201: {
                headers: {
                    /** @description The job's URL. */
                    Location?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Job"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            /**
             * @description A quota forbids the request (`error: quota_exceeded`), or the caller may not
             *     submit for another user (`error: forbidden`).
             */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description An admin asked for a `user` that JupyterHub does not know. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            413: components["responses"]["TooLargeJob"];
            /**
             * @description The pool could never meet the job's shape (`error: unsatisfiable`), or the
             *     `Idempotency-Key` was used for a different job (`error: idempotency_conflict`).
             */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    getJob: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The job id. */
                id: components["parameters"]["JobId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The job. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Job"];
                };
            };
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
        };
    };
    cancelJob: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The job id. */
                id: components["parameters"]["JobId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The job, now `cancelled`. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Job"];
                };
            };
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            /** @description The job has already ended (`error: job_ended`). */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    /**
                     * @example {
                     *       "status": 409,
                     *       "error": "job_ended",
                     *       "message": "job 12 has already ended (succeeded)",
                     *       "field": null
                     *     }
                     */
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    getJobLog: {
        parameters: {
            query?: {
                /** @description Byte offset to read from. */
                offset?: number;
                /** @description At most this many bytes. */
                limit?: number;
            };
            header?: never;
            path: {
                /** @description The job id. */
                id: components["parameters"]["JobId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The page. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["JobLog"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
        };
    };
    listJobDefinitions: {
        parameters: {
            query?: {
                /** @description Only this user's (another user's needs the admin scope). */
                user?: components["schemas"]["Name"];
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The definitions. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["JobDefinitionList"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
        };
    };
    createJobDefinition: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                /**
                 * @example {
                 *       "path": "work/nightly.py",
                 *       "script": "print('hello')",
                 *       "schedule": "0 2 * * *"
                 *     }
                 */
                "application/json": components["schemas"]["JobDefinitionRequest"];
            };
        };
        responses: {
            /** @description The definition. */
            201: {
                headers: {
                    /** @description The definition's URL. */
                    Location?: string;
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["JobDefinition"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            /** @description An admin asked for a `user` that JupyterHub does not know. */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            413: components["responses"]["TooLargeJob"];
        };
    };
    getJobDefinition: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The job definition id. */
                id: components["parameters"]["JobDefinitionId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The definition. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["JobDefinition"];
                };
            };
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
        };
    };
    deleteJobDefinition: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The job definition id. */
                id: components["parameters"]["JobDefinitionId"];
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Removed. */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
        };
    };
    updateJobDefinition: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                /** @description The job definition id. */
                id: components["parameters"]["JobDefinitionId"];
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["JobDefinitionPatch"];
            };
        };
        responses: {
            /** @description The definition. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["JobDefinition"];
                };
            };
            400: components["responses"]["BadRequest"];
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
            404: components["responses"]["NotFound"];
            413: components["responses"]["TooLarge"];
        };
    };
    getMetrics: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Metrics in the Prometheus text format. */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/plain": string;
                };
            };
            401: components["responses"]["Unauthenticated"];
            403: components["responses"]["Forbidden"];
        };
    };
}
