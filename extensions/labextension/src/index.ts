/**
 * gpuhub's JupyterLab / Notebook 7 front end: the user's own GPUs, lease and quota in the
 * status bar, and a side panel with charts, processes, lease and quota bars; notebooks and
 * scripts run as batch GPU jobs, with a Jobs panel (jobs-plugin.ts).
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { jobsPlugin } from './jobs-plugin';
import { GpuModel } from './model';
import { GpuPanel } from './panel';
import { GpuStatus } from './status';

/** The plugin id; also the settings schema's id (schema/plugin.json). */
const PLUGIN_ID = '@gpuhub/jupyterlab-gpuhub:plugin';

/** Command ids. */
namespace CommandIDs {
  export const openPanel = 'gpuhub:open-panel';
}

/** The default refresh rate (ms) until the settings load. */
const DEFAULT_REFRESH_MS = 2000;

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: "Shows this server's GPUs, lease and quota from gpuhub.",
  autoStart: true,
  optional: [IStatusBar, ISettingRegistry, ITranslator, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    statusBar: IStatusBar | null,
    settingRegistry: ISettingRegistry | null,
    translator: ITranslator | null,
    palette: ICommandPalette | null
  ): void => {
    const trans = (translator ?? nullTranslator).load('jupyterlab_gpuhub');
    const model = new GpuModel({ refreshRate: DEFAULT_REFRESH_MS });
    const panel = new GpuPanel(model, trans);
    app.shell.add(panel, 'right', { rank: 900 });

    app.commands.addCommand(CommandIDs.openPanel, {
      label: trans.__('Show GPUs (gpuhub)'),
      caption: trans.__("This server's GPUs, lease and quota"),
      execute: () => {
        app.shell.activateById(panel.id);
        void model.refresh();
      }
    });
    palette?.addItem({ command: CommandIDs.openPanel, category: trans.__('GPU') });

    let status: GpuStatus | null = null;
    let showInStatusBar = true;
    const openPanel = (): void => {
      void app.commands.execute(CommandIDs.openPanel);
    };
    if (statusBar) {
      status = new GpuStatus(model, trans, openPanel);
      statusBar.registerStatusItem(PLUGIN_ID, {
        item: status,
        align: 'left',
        rank: 900,
        isActive: () => showInStatusBar
      });
    } else {
      // Notebook 7 has no status bar: the same one-line item goes in its top bar
      status = new GpuStatus(model, trans, openPanel);
      status.addClass('jp-gpuhub-status-top');
      status.id = 'jp-gpuhub-status-top';
      app.shell.add(status, 'top', { rank: 900 });
    }

    if (settingRegistry) {
      const apply = (settings: ISettingRegistry.ISettings): void => {
        model.refreshRate = settings.get('refreshRate').composite as number;
        panel.warnFraction = settings.get('budgetWarningFraction').composite as number;
        showInStatusBar = settings.get('showInStatusBar').composite as boolean;
        if (status) {
          status.setHidden(!showInStatusBar);
        }
        panel.update();
      };
      settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          apply(settings);
          settings.changed.connect(apply);
        })
        .catch(reason => {
          console.error('gpuhub: could not load the settings', reason);
        });
    }
  }
};

export default [plugin, jobsPlugin];
