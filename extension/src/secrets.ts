// API tokens in VS Code's SecretStorage (OS keychain), never in settings.json. A cached copy is kept
// because the language client's configuration middleware must answer synchronously-ish and often.
import * as vscode from 'vscode';
import { Tokens } from './settings';

const KEYS = { completion: 'stacklens.completionToken', membership: 'stacklens.membershipToken' } as const;
type Kind = keyof typeof KEYS;

export class TokenStore implements vscode.Disposable {
  private cache: Tokens = {};
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  private readonly sub: vscode.Disposable;

  constructor(private readonly secrets: vscode.SecretStorage) {
    this.sub = secrets.onDidChange(async (e) => {
      if ((Object.values(KEYS) as string[]).includes(e.key)) {
        await this.load();
        this.changed.fire();
      }
    });
  }

  async load(): Promise<Tokens> {
    this.cache = {
      completion: (await this.secrets.get(KEYS.completion)) || undefined,
      membership: (await this.secrets.get(KEYS.membership)) || undefined,
    };
    return this.cache;
  }

  get tokens(): Tokens {
    return this.cache;
  }

  /** The "set API token" command: choose which token, then type it (empty input removes it). */
  async prompt(): Promise<void> {
    const pick = await vscode.window.showQuickPick(
      [
        { label: 'Model backend token', description: 'completion server / Hugging Face / OpenAI-compatible', which: 'completion' as Kind },
        { label: 'Membership service token', description: 'bearer token of `code-search serve`', which: 'membership' as Kind },
      ],
      { title: 'stacklens: set API token' },
    );
    if (!pick) return;
    const value = await vscode.window.showInputBox({
      title: `stacklens: ${pick.label}`,
      prompt: 'Stored in VS Code\'s secret storage and passed to the server. Leave empty to remove it.',
      password: true,
      ignoreFocusOut: true,
    });
    if (value === undefined) return;
    if (value.trim()) await this.secrets.store(KEYS[pick.which], value.trim());
    else await this.secrets.delete(KEYS[pick.which]);
    vscode.window.showInformationMessage(`stacklens: ${pick.label.toLowerCase()} ${value.trim() ? 'saved' : 'removed'}.`);
  }

  dispose(): void {
    this.sub.dispose();
    this.changed.dispose();
  }
}
