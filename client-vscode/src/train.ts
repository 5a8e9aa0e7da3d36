/**
 * `ghostframe.trainOnWorkspace`: runs the trainer on the workspace folders
 * as a VS Code task (so it shows in a terminal and we learn its exit code),
 * then offers to switch `ghostframe.adapter` to the new adapter.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import { pickInterpreter } from './server';
import { adapterFolderName, trainerArgs } from './trainArgs';

export async function trainOnWorkspace(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): Promise<void> {
  const folders = vscode.workspace.workspaceFolders?.map((f) => f.uri.fsPath) ?? [];
  if (folders.length === 0) {
    void vscode.window.showWarningMessage('ghostframe: open a folder first; the adapter is trained on its Python files and notebooks.');
    return;
  }
  const interpreter = await pickInterpreter();
  const output = path.join(context.globalStorageUri.fsPath, 'adapters', adapterFolderName(vscode.workspace.name ?? 'workspace', new Date()));
  await vscode.workspace.fs.createDirectory(vscode.Uri.file(path.dirname(output)));
  const args = trainerArgs(folders, output);
  log.info(`Training: ${interpreter.path} ${args.join(' ')}`);

  const task = new vscode.Task(
    { type: 'ghostframe', task: 'train' },
    vscode.TaskScope.Workspace,
    'train adapter',
    'ghostframe-train',
    new vscode.ProcessExecution(interpreter.path, args),
  );
  task.presentationOptions = { reveal: vscode.TaskRevealKind.Always, panel: vscode.TaskPanelKind.Dedicated, clear: true };
  const execution = await vscode.tasks.executeTask(task);

  const sub = vscode.tasks.onDidEndTaskProcess(async (e) => {
    if (e.execution !== execution) return;
    sub.dispose();
    if (e.exitCode !== 0) {
      log.error(`ghostframe-train exited with code ${e.exitCode}`);
      const choice = await vscode.window.showErrorMessage(`ghostframe: training failed (exit code ${e.exitCode}).`, 'Show Log');
      if (choice === 'Show Log') log.show();
      return;
    }
    log.info(`Adapter written to ${output}`);
    const choice = await vscode.window.showInformationMessage(
      `ghostframe: a new adapter was trained on this workspace (${path.basename(output)}). Use it?`,
      'Use Adapter',
      'Not Now',
    );
    if (choice === 'Use Adapter') {
      await vscode.workspace.getConfiguration('ghostframe').update('adapter', output, vscode.ConfigurationTarget.Workspace);
    }
  });
  context.subscriptions.push(sub);
}
