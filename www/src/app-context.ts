// What every page reaches: the server's config, who is signed in, and the
// app-wide toast and confirm dialog.
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Config, Profile } from './api';

export interface ConfirmOptions {
  title: string;
  message?: string;
  ok: string;
  danger?: boolean;
}

export interface AppState {
  config: Config;
  me: Profile;
  setMe: (p: Profile) => void;
  /* re-reads the profile (usage after an upload or delete) */
  refreshMe: () => void;
  toast: (text: string, kind?: 'ok' | 'error', action?: { label: string; run: () => void }) => void;
  confirm: (o: ConfirmOptions) => Promise<boolean>;
  signOut: () => void;
}

export const AppCtx = createContext<AppState>(null as unknown as AppState);
export const useApp = () => useContext(AppCtx);
