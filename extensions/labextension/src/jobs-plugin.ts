/**
 * The jobs plugin: "Run as GPU job" (notebook toolbar, file browser context menu, command
 * palette) with its dialog, and the Jobs panel in the left sidebar ("gpuhub:open-jobs").
 * Where the toolbar button and the menu items go is declared in schema/jobs.json.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { JobsAPI } from './jobs-api';
import { runAsJobDialog, showErrorBody } from './jobs-dialog';
import { JobsPanel, jobsIcon } from './jobs-panel';

/** The plugin id; also the id of schema/jobs.json. */
export const JOBS_PLUGIN_ID = '@gpuhub/jupyterlab-gpuhub:jobs';

/** Command ids. */
export namespace JobCommandIDs {
  export const runAsJob = 'gpuhub:run-as-job';
  export const openJobs = 'gpuhub:open-jobs';
}

/** What may run as a job. */
const RUNNABLE = /\.(ipynb|py)$/;

/** A document widget's path, when `widget` is one (notebook, editor). */
function documentPath(widget: Widget | null): string | null {
  const context = (widget as any)?.context;
  return context && typeof context.path === 'string' ? (context.path as string) : null;
}

/** Save a document widget with unsaved changes: the job runs what is on disk. */
async function saveFirst(widget: Widget | null): Promise<void> {
  const context = (widget as any)?.context;
  if (context?.model?.dirty && typeof context.save === 'function') {
    await context.save();
  }
}

/** The notebook or script the command is about (see `execute`). */
function target(
  app: JupyterFrontEnd,
  browser: IDefaultFileBrowser | null,
  args: { path?: unknown; from?: unknown }
): { path: string | null; widget: Widget | null } {
  if (typeof args.path === 'string') {
    return { path: args.path, widget: null };
  }
  if (args.from === 'filebrowser' && browser) {
    const item = browser.selectedItems().next();
    const model = item && !item.done ? item.value : null;
    return { path: model ? model.path : null, widget: null };
  }
  const widget = app.shell.currentWidget;
  const path = documentPath(widget);
  if (path) {
    return { path, widget };
  }
  if (browser) {
    const item = browser.selectedItems().next();
    if (item && !item.done) {
      return { path: item.value.path, widget: null };
    }
  }
  return { path: null, widget: null };
}

export const jobsPlugin: JupyterFrontEndPlugin<void> = {
  id: JOBS_PLUGIN_ID,
  description: 'Runs notebooks and scripts as batch GPU jobs of gpuhub, and lists them.',
  autoStart: true,
  optional: [IDefaultFileBrowser, ICommandPalette, ISettingRegistry, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    browser: IDefaultFileBrowser | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    translator: ITranslator | null
  ): void => {
    const trans: TranslationBundle = (translator ?? nullTranslator).load('jupyterlab_gpuhub');
    const api = new JobsAPI();

    // opens the panel declared below (it is made by the time anything calls this)
    const openJobs = (jobId?: number): void => {
      if (!panel.isAttached) {
        app.shell.add(panel, 'left', { rank: 950 });
      }
      app.shell.activateById(panel.id);
      if (jobId !== undefined) {
        panel.select(jobId);
      } else {
        void panel.refresh();
      }
    };

    const panel = new JobsPanel(api, trans, {
      openFile: path => {
        void app.commands.execute('docmanager:open', { path });
      },
      openFolder: path => {
        if (app.commands.hasCommand('filebrowser:go-to-path')) {
          void app.commands.execute('filebrowser:go-to-path', { path: '/' + path });
        } else if (browser) {
          void browser.model.cd('/' + path);
        }
      },
      runAgain: async job => {
        const path = job.local ? job.local.path : job.path;
        if (!path) {
          await showErrorBody(
            trans.__('Run again'),
            trans.__(
              "%1 is outside this server's folder: submit it with gpuhub job submit.",
              job.path
            ),
            trans
          );
          return null;
        }
        return runAsJobDialog(api, path, trans, job);
      }
    });
    app.shell.add(panel, 'left', { rank: 950 });

    app.commands.addCommand(JobCommandIDs.runAsJob, {
      label: trans.__('Run as GPU job'),
      caption: trans.__('Run this notebook or script as a batch job on the GPU pool'),
      icon: jobsIcon,
      isVisible: args => {
        if (args.from !== 'filebrowser' || !browser) {
          return true;
        }
        const item = browser.selectedItems().next();
        return !!item && !item.done && RUNNABLE.test(item.value.path);
      },
      execute: async args => {
        const { path, widget } = target(app, browser, args as any);
        if (!path || !RUNNABLE.test(path)) {
          await showErrorBody(
            trans.__('Run as GPU job'),
            trans.__(
              'Open a notebook (.ipynb) or a Python script (.py), or select one in the file browser, then run it as a GPU job.'
            ),
            trans
          );
          return;
        }
        await saveFirst(widget);
        const created = await runAsJobDialog(api, PathExt.normalize(path), trans);
        if (created && 'status' in created) {
          openJobs(created.id);
        } else if (created) {
          openJobs();
        }
      }
    });

    app.commands.addCommand(JobCommandIDs.openJobs, {
      label: trans.__('Show GPU jobs (gpuhub)'),
      caption: trans.__('My batch GPU jobs, their logs and outputs'),
      execute: () => openJobs()
    });

    palette?.addItem({ command: JobCommandIDs.runAsJob, category: trans.__('GPU') });
    palette?.addItem({ command: JobCommandIDs.openJobs, category: trans.__('GPU') });

    if (settingRegistry) {
      settingRegistry
        .load(JOBS_PLUGIN_ID)
        .then(settings => {
          const apply = (): void => {
            panel.refreshRate = settings.get('refreshRate').composite as number;
          };
          apply();
          settings.changed.connect(apply);
        })
        .catch(reason => {
          console.error('gpuhub: could not load the jobs settings', reason);
        });
    }
  }
};
