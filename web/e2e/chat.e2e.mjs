/**
 * End-to-end: real server, real browsers. Run from web/ with `npm run e2e`
 * after `npm run build` and a server build that embeds web/dist.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BanterServer, openBrowser, screenshot, waitUntil } from './harness.mjs';

const PASSWORD = 'correct horse battery';
const server = new BanterServer();
const browsers = [];
let alice;
let bob;

async function register(page, username) {
  await page.goto(server.base + '/');
  await page.getByRole('tab', { name: 'Register' }).click();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Email').fill(`${username}@example.com`);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('navigation', { name: 'Rooms' }).waitFor();
}

async function login(page, username) {
  await page.goto(server.base + '/');
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).last().click();
  await page.getByRole('navigation', { name: 'Rooms' }).waitFor();
}

const token = (page) => page.evaluate(() => JSON.parse(localStorage.getItem('banter.auth')).access);
const messageList = (page) => page.getByTestId('message-list');
const composer = (page, room) => page.getByLabel(`Message #${room}`);

async function openRoom(page, name) {
  await page.getByRole('navigation', { name: 'Rooms' }).getByRole('link', { name }).click();
  await page.getByRole('heading', { name: `#${name}` }).waitFor();
}

/** The room as the server lists it for the user signed in on `page`. */
async function listedRoom(page, name) {
  const rooms = await server.api('/chat/rooms/', { token: await token(page) });
  return rooms.find((r) => r.name === name);
}

async function countText(page, text) {
  return messageList(page).getByText(text, { exact: true }).count();
}

before(async () => {
  await server.start();
  alice = await openBrowser();
  bob = await openBrowser();
  browsers.push(alice, bob);
});

after(async () => {
  for (const b of browsers) await b.context.close().catch(() => undefined);
  await server.stop();
});

describe('Banter web client', { timeout: 240_000 }, () => {
  test('register, show field errors, create a room, and join it from another browser', async () => {
    // A field error from the server lands under its field.
    await register(alice.page, 'alice');
    await bob.page.goto(server.base + '/');
    await bob.page.getByRole('tab', { name: 'Register' }).click();
    await bob.page.getByLabel('Username').fill('alice');
    await bob.page.getByLabel('Email').fill('other@example.com');
    await bob.page.getByLabel('Password').fill(PASSWORD);
    await bob.page.getByRole('button', { name: 'Create account' }).click();
    const usernameField = bob.page.getByLabel('Username');
    await waitUntil(async () => (await usernameField.getAttribute('aria-invalid')) === 'true', 'username field error');
    await screenshot(bob.page, 'register-field-error');
    await register(bob.page, 'bob');

    await alice.page.getByRole('button', { name: 'Create a room' }).click();
    const dialog = alice.page.getByRole('dialog', { name: 'Create a room' });
    await dialog.getByLabel('Name').fill('general');
    await dialog.getByLabel('Topic (optional)').fill('Everything and nothing');
    await dialog.getByRole('button', { name: 'Create' }).click();
    await alice.page.getByRole('heading', { name: '#general' }).waitFor();

    await bob.page.getByRole('button', { name: 'Browse public rooms…' }).click();
    await bob.page.getByRole('button', { name: 'Join general' }).click();
    await bob.page.getByRole('heading', { name: '#general' }).waitFor();
  });

  test('two users chat in real time, with typing shown to the other', async () => {
    await composer(alice.page, 'general').fill('');
    await composer(alice.page, 'general').pressSequentially('hello bo');
    await bob.page.getByTestId('typing').getByText('alice is typing…').waitFor();
    await composer(alice.page, 'general').pressSequentially('b');
    await composer(alice.page, 'general').press('Enter');
    await messageList(bob.page).getByText('hello bob', { exact: true }).waitFor();
    await waitUntil(async () => (await bob.page.getByTestId('typing').innerText()) === '', 'typing to stop');

    // Shift+Enter makes a new line instead of sending.
    await composer(bob.page, 'general').pressSequentially('hi alice');
    await composer(bob.page, 'general').press('Shift+Enter');
    await composer(bob.page, 'general').pressSequentially('second line');
    await composer(bob.page, 'general').press('Enter');
    await messageList(alice.page).getByText('hi alice\nsecond line', { exact: true }).waitFor();
    assert.equal(await alice.page.getByTestId('pending').count(), 0);
    assert.equal(await countText(alice.page, 'hello bob'), 1, 'own message shown once after ack');
  });

  test('message text is never interpreted as HTML', async () => {
    let dialogs = 0;
    bob.page.on('dialog', (d) => {
      dialogs += 1;
      void d.dismiss();
    });
    const evil = '<script>alert(1)</script><img src=x onerror=alert(2)>';
    await composer(alice.page, 'general').fill(evil);
    await composer(alice.page, 'general').press('Enter');
    await messageList(bob.page).getByText(evil, { exact: true }).waitFor();
    assert.equal(await messageList(bob.page).locator('script, img').count(), 0);
    assert.equal(dialogs, 0);
    await composer(alice.page, 'general').fill('docs at https://example.com/banter.');
    await composer(alice.page, 'general').press('Enter');
    const link = messageList(bob.page).getByRole('link', { name: 'https://example.com/banter' });
    await link.waitFor();
    assert.equal(await link.getAttribute('href'), 'https://example.com/banter');
  });

  test('history loads page by page while scrolling up, with a bounded DOM', async () => {
    const bobToken = await token(bob.page);
    const room = await server.api('/chat/rooms/', { method: 'POST', token: bobToken, body: { name: 'history' } });
    for (let i = 1; i <= 200; i++) {
      await server.api(`/chat/rooms/${room.id}/messages/`, { method: 'POST', token: bobToken, body: { message: `history ${i}` } });
    }
    await server.api(`/chat/rooms/${room.id}/join/`, { method: 'POST', token: await token(alice.page) });
    await alice.page.goto(`${server.base}/rooms/${room.id}`);
    await alice.page.getByRole('heading', { name: '#history' }).waitFor();
    await messageList(alice.page).getByText('history 200', { exact: true }).waitFor();

    const list = messageList(alice.page);
    for (let round = 0; round < 30; round++) {
      if (await list.getByText('history 1', { exact: true }).count()) break;
      await list.evaluate((el) => (el.scrollTop = 0));
      // The view must stay where it was when older messages are prepended, not jump to the top.
      await waitUntil(
        async () => (await list.getByText('history 1', { exact: true }).count()) || (await list.evaluate((el) => el.scrollTop > 100)),
        'older page to load and the view to keep its place',
      );
      const rendered = await list.getByTestId('message').count();
      assert.ok(rendered < 150, `DOM stays bounded (rendered ${rendered} rows)`);
    }
    await list.getByText('history 1', { exact: true }).waitFor();
    await list.getByText('This is the beginning of the conversation.').waitFor();
    await screenshot(alice.page, 'history');
  });

  test('a reload keeps the session', async () => {
    await alice.page.goto(server.base + '/');
    await openRoom(alice.page, 'general');
    await alice.page.reload();
    await alice.page.getByRole('heading', { name: '#general' }).waitFor();
    assert.equal(await alice.page.getByRole('button', { name: 'Sign in' }).count(), 0);
    await messageList(alice.page).getByText('hello bob', { exact: true }).waitFor();
    await screenshot(alice.page, 'desktop-room');
    // What is on screen counts as read, on the server too.
    await waitUntil(async () => (await listedRoom(alice.page, 'general')).unread_count === 0, 'general to be read');
  });

  test('unread counts appear for rooms not being read', async () => {
    await alice.page.goto(server.base + '/');
    await alice.page.getByRole('navigation', { name: 'Rooms' }).waitFor();
    await server.api('/chat/rooms/', { method: 'GET', token: await token(bob.page) }).then(async (rooms) => {
      const general = rooms.find((r) => r.name === 'general');
      await server.api(`/chat/rooms/${general.id}/messages/`, { method: 'POST', token: await token(bob.page), body: { message: 'unread one' } });
    });
    const badge = alice.page.getByRole('link', { name: /general/ }).getByTestId('unread');
    await waitUntil(async () => (await badge.count()) && (await badge.innerText()).startsWith('1'), 'unread badge');
    await openRoom(alice.page, 'general');
    await alice.page.getByTestId('new-messages').waitFor();
    await waitUntil(async () => (await badge.count()) === 0, 'badge to clear once read');
  });

  test('a message on screen as the page closes counts as read', async () => {
    const general = await listedRoom(bob.page, 'general');
    await server.api(`/chat/rooms/${general.id}/messages/`, { method: 'POST', token: await token(bob.page), body: { message: 'seen on the way out' } });
    await messageList(alice.page).getByText('seen on the way out', { exact: true }).waitFor();
    // Leaving at once: sooner than the delay after which what is on screen counts as read.
    await alice.page.goto(server.base + '/');
    await waitUntil(async () => (await listedRoom(alice.page, 'general')).unread_count === 0, 'the read marker sent as the page went');
    await openRoom(alice.page, 'general');
  });

  test('the server restarts: reconnecting shows, then messages sent meanwhile arrive once', async () => {
    await openRoom(alice.page, 'general');
    await openRoom(bob.page, 'general');
    await server.stop();
    await alice.page.getByTestId('connection-status').getByText('Reconnecting…').waitFor();
    await screenshot(alice.page, 'reconnecting');
    await server.start();
    // Sent as bob right after the restart, while alice's client is most likely still backing off.
    const bobToken = await token(bob.page);
    const rooms = await server.api('/chat/rooms/', { token: bobToken });
    const general = rooms.find((r) => r.name === 'general');
    for (const text of ['while you were away 1', 'while you were away 2']) {
      await server.api(`/chat/rooms/${general.id}/messages/`, { method: 'POST', token: bobToken, body: { message: text } });
    }
    await messageList(alice.page).getByText('while you were away 2', { exact: true }).waitFor({ timeout: 45_000 });
    await waitUntil(async () => (await alice.page.getByTestId('connection-status').count()) === 0, 'connection to be back', 30_000);
    assert.equal(await countText(alice.page, 'while you were away 1'), 1);
    assert.equal(await countText(alice.page, 'while you were away 2'), 1);
    // And live delivery works again over the new connection.
    await composer(alice.page, 'general').fill('back online');
    await composer(alice.page, 'general').press('Enter');
    await messageList(bob.page).getByText('back online', { exact: true }).waitFor({ timeout: 45_000 });
    assert.equal(await countText(bob.page, 'back online'), 1);
  });

  test('a phone-sized screen uses a drawer for the sidebar', async () => {
    const phone = await openBrowser({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    browsers.push(phone);
    await login(phone.page, 'alice');
    const nav = phone.page.getByRole('navigation', { name: 'Rooms' });
    const menu = phone.page.getByRole('button', { name: 'Open navigation' });
    assert.equal(await nav.isVisible(), true);
    const box = await nav.boundingBox();
    assert.ok(!box || box.x + box.width <= 1, 'drawer starts closed, off screen');
    await screenshot(phone.page, 'phone-home');
    await menu.click();
    await waitUntil(async () => ((await nav.boundingBox())?.x ?? -1) >= 0, 'drawer to open');
    await screenshot(phone.page, 'phone-drawer');
    await nav.getByRole('link', { name: 'general' }).click();
    await phone.page.getByRole('heading', { name: '#general' }).waitFor();
    await waitUntil(async () => ((await nav.boundingBox())?.x ?? 0) < 0, 'drawer to close');
    await composer(phone.page, 'general').fill('from my phone');
    await composer(phone.page, 'general').press('Enter');
    await messageList(bob.page).getByText('from my phone', { exact: true }).waitFor();
    await screenshot(phone.page, 'phone-room');
  });

  test('dark mode follows the system setting', async () => {
    const dark = await openBrowser({ colorScheme: 'dark' });
    browsers.push(dark);
    await login(dark.page, 'bob');
    await openRoom(dark.page, 'general');
    await messageList(dark.page).getByText('from my phone', { exact: true }).waitFor();
    const bg = await dark.page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.notEqual(bg, 'rgb(255, 255, 255)');
    await screenshot(dark.page, 'dark-room');
    const phoneDark = await openBrowser({ colorScheme: 'dark', viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    browsers.push(phoneDark);
    await login(phoneDark.page, 'bob');
    await phoneDark.page.goto(server.base + '/');
    await screenshot(phoneDark.page, 'dark-phone-login');
  });

  test('direct conversations and private rooms with invitations', async () => {
    await alice.page.goto(server.base + '/');
    await alice.page.getByRole('button', { name: 'Start a direct conversation' }).click();
    const dm = alice.page.getByRole('dialog', { name: 'Start a direct conversation' });
    await dm.getByLabel('Username').fill('nobody-here');
    await dm.getByRole('button', { name: 'Start' }).click();
    await dm.getByText('No such user.').waitFor();
    await dm.getByLabel('Username').fill('bob');
    await dm.getByRole('button', { name: 'Start' }).click();
    await alice.page.getByRole('heading', { name: '@bob' }).waitFor();
    await alice.page.getByLabel('Message @bob').fill('psst, bob');
    await alice.page.getByLabel('Message @bob').press('Enter');
    // Bob's client finds the new conversation when it looks at the room list again (on focus).
    await bob.page.goto(server.base + '/');
    const bobNav = bob.page.getByRole('navigation', { name: 'Rooms' });
    await bobNav.getByRole('link', { name: /alice/ }).click();
    await bob.page.getByRole('heading', { name: '@alice' }).waitFor();
    await messageList(bob.page).getByText('psst, bob', { exact: true }).waitFor();

    await alice.page.getByRole('button', { name: 'Create a private room' }).click();
    const create = alice.page.getByRole('dialog', { name: 'Create a room' });
    await create.getByLabel('Name').fill('secret-plans');
    await create.getByLabel(/Private/).check();
    await create.getByRole('button', { name: 'Create' }).click();
    await alice.page.getByRole('heading', { name: /secret-plans/ }).waitFor();
    await alice.page.getByRole('button', { name: /Members/ }).click();
    const members = alice.page.getByRole('complementary', { name: 'Members' });
    await members.getByLabel('Invite by username').fill('bob');
    await members.getByRole('button', { name: 'Invite' }).click();
    await members.getByText('bob', { exact: true }).waitFor();
    await screenshot(alice.page, 'members');
    await bob.page.reload();
    await bobNav.getByRole('link', { name: /secret-plans/ }).waitFor();
  });

  test('server admins manage users and rooms', async () => {
    const carol = await server.api('/auth/register/', {
      method: 'POST',
      body: { username: 'carol', email: 'carol@example.com', password: PASSWORD },
    });
    assert.equal(carol.user.is_admin, false);
    server.cli('user', 'promote', 'alice');
    await alice.page.goto(server.base + '/manage');
    await alice.page.getByRole('heading', { name: 'Administration' }).waitFor();
    await alice.page.getByLabel('Search users').fill('car');
    await alice.page.getByRole('button', { name: 'Deactivate carol' }).click();
    await alice.page.getByRole('button', { name: 'Reactivate carol' }).waitFor();
    await assert.rejects(server.api('/auth/login/', { method: 'POST', body: { username: 'carol', password: PASSWORD } }));
    await alice.page.getByRole('button', { name: 'Reactivate carol' }).click();
    await alice.page.getByRole('button', { name: 'Deactivate carol' }).waitFor();
    await alice.page.getByLabel('Search users').fill('');
    await screenshot(alice.page, 'admin-users');
    await alice.page.getByRole('tab', { name: 'Rooms' }).click();
    alice.page.once('dialog', (d) => void d.accept());
    await alice.page.getByRole('button', { name: 'Delete room history' }).click();
    await waitUntil(async () => (await alice.page.getByRole('button', { name: 'Delete room history' }).count()) === 0, 'room to be deleted');
    await screenshot(alice.page, 'admin-rooms');
  });

  test('log out ends the session', async () => {
    await bob.page.getByRole('button', { name: 'Log out' }).click();
    await bob.page.getByRole('button', { name: 'Sign in' }).last().waitFor();
    await bob.page.reload();
    await bob.page.getByRole('button', { name: 'Sign in' }).last().waitFor();
    await screenshot(bob.page, 'login');
  });
});
