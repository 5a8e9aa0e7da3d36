/** `ghostframe.openSampleNotebook`: an untitled notebook to try ghost text in (the walkthrough's second step). */
import * as vscode from 'vscode';

const INTRO = `# Try ghostframe

Put the cursor at the end of the code cell below and type, e.g. \`monthly = df.groupby(\`.
Grey ghost text appears: **Tab** accepts it, **Ctrl+→** one word, **Esc** dismisses it,
**Alt+\\\\** asks for a suggestion now.`;

const CODE = `import pandas as pd
import numpy as np

df = pd.read_csv("sales.csv", parse_dates=["date"])
df["revenue"] = df["price"] * df["quantity"]
df = df.dropna(subset=["city"])
`;

export async function openSampleNotebook(): Promise<void> {
  const data = new vscode.NotebookData([
    new vscode.NotebookCellData(vscode.NotebookCellKind.Markup, INTRO, 'markdown'),
    new vscode.NotebookCellData(vscode.NotebookCellKind.Code, CODE, 'python'),
  ]);
  const doc = await vscode.workspace.openNotebookDocument('jupyter-notebook', data);
  await vscode.window.showNotebookDocument(doc);
}
