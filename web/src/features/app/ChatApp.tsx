import { lazy, Suspense, useEffect, useRef, useState } from 'react';
import { ChatClient } from '../../lib/chat';
import { ChatSocket, browserSocket, websocketUrl } from '../../lib/socket';
import { api, session } from '../../services';
import { ConnectionBanner } from '../presence/ConnectionBanner';
import { Sidebar } from '../rooms/Sidebar';
import { RoomView } from '../rooms/RoomView';
import { ChatContext, NavigateContext, useChat, useChatClient } from './context';
import { useMediaQuery } from './useMediaQuery';
import { useRoute } from './useRoute';

const ROOM_LIST_POLL_MS = 30_000;

// Only admins ever open it, so it is not part of the initial download.
const AdminPage = lazy(() => import('../admin/AdminPage'));

function createClient(): ChatClient {
  const auth = session.auth!;
  return new ChatClient(
    api,
    auth.user,
    (handlers) =>
      new ChatSocket({
        ...handlers,
        createSocket: browserSocket,
        url: websocketUrl,
        accessToken: () => session.accessToken(),
        refresh: (stale) => session.refresh(stale),
      }),
    () => session.clear(),
  );
}

export function ChatApp() {
  const [chat] = useState(createClient);
  useEffect(() => {
    void chat.start();
    const online = () => chat.networkOnline();
    window.addEventListener('online', online);
    const leaving = () => chat.flushReads();
    window.addEventListener('pagehide', leaving);
    // The contract has no event for "you were added to a room", so new
    // direct conversations and invitations are found by looking again.
    let lastLook = Date.now();
    const look = () => {
      if (document.visibilityState !== 'visible' || Date.now() - lastLook < 5_000) return;
      lastLook = Date.now();
      chat.loadRooms().catch(() => undefined);
    };
    const poll = setInterval(look, ROOM_LIST_POLL_MS);
    window.addEventListener('focus', look);
    document.addEventListener('visibilitychange', look);
    // Refresh the own user (admin flag may have changed) without blocking the start.
    api.me().then(
      (u) => {
        session.setUser(u);
        chat.setMe(u);
      },
      () => undefined,
    );
    return () => {
      window.removeEventListener('online', online);
      window.removeEventListener('pagehide', leaving);
      window.removeEventListener('focus', look);
      document.removeEventListener('visibilitychange', look);
      clearInterval(poll);
      chat.stop();
    };
  }, [chat]);
  return (
    <ChatContext.Provider value={chat}>
      <Shell />
    </ChatContext.Provider>
  );
}

function Shell() {
  const chat = useChatClient();
  const [route, navigate] = useRoute();
  const [drawerOpen, setDrawerOpen] = useState(false);
  const me = useChat((s) => s.me);
  const activeRoomId = useChat((s) => s.activeRoomId);
  const menuButton = useRef<HTMLButtonElement>(null);
  const narrow = useMediaQuery('(max-width: 767px)');

  const routeRoomId = route.name === 'room' ? route.roomId : null;
  useEffect(() => {
    void chat.openRoom(routeRoomId);
  }, [chat, routeRoomId]);

  // The open room vanished (deleted, or we were removed): leave its URL.
  const shownRoomId = useRef<number | null>(null);
  useEffect(() => {
    if (activeRoomId === null && shownRoomId.current !== null && shownRoomId.current === routeRoomId) navigate({ name: 'home' });
    shownRoomId.current = activeRoomId;
  }, [routeRoomId, activeRoomId, navigate]);

  useEffect(() => {
    if (!drawerOpen) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        setDrawerOpen(false);
        menuButton.current?.focus();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [drawerOpen]);

  const go: typeof navigate = (r) => {
    setDrawerOpen(false);
    navigate(r);
  };

  return (
    <NavigateContext.Provider value={go}>
      <div className="flex h-full flex-col">
        <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:z-50 focus:rounded focus:bg-bg focus:p-2">
          Skip to conversation
        </a>
        <ConnectionBanner />
        <div className="relative flex min-h-0 flex-1">
          {drawerOpen && (
            <div className="fixed inset-0 z-30 bg-black/40 md:hidden" aria-hidden="true" onClick={() => setDrawerOpen(false)} />
          )}
          <div
            id="sidebar"
            className={`fixed inset-y-0 left-0 z-40 w-72 max-w-[85vw] transform transition-transform md:static md:z-auto md:w-64 md:translate-x-0 ${
              drawerOpen ? 'translate-x-0' : '-translate-x-full'
            }`}
            // Closed on a phone, the drawer is off screen: keep it out of the tab order too.
            inert={!drawerOpen && narrow ? true : undefined}
          >
            <Sidebar me={me} onNavigate={go} onClose={() => setDrawerOpen(false)} />
          </div>
          <main id="main" className="flex min-w-0 flex-1 flex-col bg-bg">
            <div className="flex items-center gap-2 border-b border-line px-3 py-2 md:hidden">
              <button
                ref={menuButton}
                type="button"
                aria-label="Open navigation"
                aria-expanded={drawerOpen}
                aria-controls="sidebar"
                onClick={() => setDrawerOpen(true)}
                className="rounded-md p-2 text-xl leading-none hover:bg-surface-2"
              >
                ☰
              </button>
              <span className="font-semibold">Banter</span>
            </div>
            {route.name === 'admin' ? (
              me.is_admin ? (
                <Suspense fallback={<p className="p-6 text-muted">Loading…</p>}>
                  <AdminPage />
                </Suspense>
              ) : (
                <p className="p-6">Only server administrators can see this page.</p>
              )
            ) : activeRoomId !== null ? (
              <RoomView key={activeRoomId} roomId={activeRoomId} />
            ) : (
              <Welcome />
            )}
          </main>
        </div>
        <Announcer />
        <Notice />
      </div>
    </NavigateContext.Provider>
  );
}

function Welcome() {
  const roomsLoaded = useChat((s) => s.roomsLoaded);
  return (
    <div className="flex flex-1 items-center justify-center p-6 text-center text-muted">
      <div>
        <h1 className="mb-2 text-xl font-semibold text-fg">Welcome to Banter</h1>
        <p>{roomsLoaded ? 'Pick a room on the left, browse public rooms, or start a direct conversation.' : 'Loading…'}</p>
      </div>
    </div>
  );
}

/** The screen reader hears new messages in the open room as they arrive. */
function Announcer() {
  const announcement = useChat((s) => s.announcement);
  return (
    <div aria-live="polite" aria-atomic="true" className="sr-only" data-testid="live-region">
      {announcement.text}
    </div>
  );
}

function Notice() {
  const chat = useChatClient();
  const notice = useChat((s) => s.notice);
  useEffect(() => {
    if (!notice) return;
    const t = setTimeout(() => chat.dismissNotice(), 6000);
    return () => clearTimeout(t);
  }, [chat, notice]);
  if (!notice) return null;
  return (
    <div role="status" className="fixed bottom-20 left-1/2 z-50 flex -translate-x-1/2 items-center gap-3 rounded-lg border border-line bg-surface px-4 py-2 shadow-lg">
      <span>{notice.text}</span>
      <button type="button" className="text-muted hover:text-fg" aria-label="Dismiss" onClick={() => chat.dismissNotice()}>
        ×
      </button>
    </div>
  );
}
