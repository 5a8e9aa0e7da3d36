/**
 * Asks the Python extension (ms-python.python), when installed, for the
 * active interpreter, so ghostframe runs where the user's pandas lives.
 * Typed by hand (only the two calls used) to avoid another dependency.
 */
import * as vscode from 'vscode';

interface EnvironmentPath {
  id: string;
  path: string;
}
interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath(resource?: vscode.Uri): EnvironmentPath;
    resolveEnvironment(env: EnvironmentPath | string): Promise<{ executable: { uri?: vscode.Uri } } | undefined>;
    onDidChangeActiveEnvironmentPath: vscode.Event<unknown>;
  };
}

async function pythonApi(): Promise<PythonExtensionApi | undefined> {
  const ext = vscode.extensions.getExtension<PythonExtensionApi>('ms-python.python');
  if (!ext) return undefined;
  return ext.isActive ? ext.exports : await ext.activate();
}

/** Path of the active interpreter's executable, or undefined. */
export async function activeInterpreter(resource?: vscode.Uri): Promise<string | undefined> {
  const envs = (await pythonApi())?.environments;
  if (!envs) return undefined;
  const active = envs.getActiveEnvironmentPath(resource);
  const resolved = await envs.resolveEnvironment(active);
  return resolved?.executable.uri?.fsPath ?? active.path;
}

/** Fires when the user picks another interpreter in the Python extension. */
export async function onActiveInterpreterChanged(listener: () => void): Promise<vscode.Disposable | undefined> {
  try {
    return (await pythonApi())?.environments?.onDidChangeActiveEnvironmentPath(listener);
  } catch {
    return undefined;
  }
}
