import { createContext, useContext, useSyncExternalStore } from 'react';
import type { ChatClient, ChatState } from '../../lib/chat';
import type { Route } from '../../lib/route';

export const ChatContext = createContext<ChatClient | null>(null);

export function useChatClient(): ChatClient {
  const chat = useContext(ChatContext);
  if (!chat) throw new Error('useChatClient outside ChatContext');
  return chat;
}

/** Reads a slice of chat state; re-renders only when that slice changes identity. */
export function useChat<T>(select: (s: ChatState) => T): T {
  const chat = useChatClient();
  return useSyncExternalStore(chat.store.subscribe, () => select(chat.store.get()));
}

export const NavigateContext = createContext<(route: Route) => void>(() => undefined);

export function useNavigate(): (route: Route) => void {
  return useContext(NavigateContext);
}
