import { useSyncExternalStore } from 'react';
import { AuthScreen } from './features/auth/AuthScreen';
import { ChatApp } from './features/app/ChatApp';
import { session } from './services';

const getUserId = () => session.auth?.user.id ?? null;

export function App() {
  // Only the user id decides which screen shows; token rotation must not remount the chat.
  const userId = useSyncExternalStore(session.subscribe, getUserId);
  if (userId === null) return <AuthScreen />;
  return <ChatApp key={userId} />;
}
