#!/usr/bin/env bash
# The page's size: the gzip -9 size of every file the page can load (www/dist, made by
# scripts/build-page.sh; this script builds nothing), as a per-file table and a total. The
# NAME.gz and NAME.br forms beside the files are what the relay sends; they are not counted.
#
#   scripts/page-size.sh          exits non-zero when the total is over the CEILING
#   scripts/page-size.sh --goal   exits non-zero when the total is over the GOAL
#   scripts/page-size.sh BYTES    exits non-zero when the total is over BYTES
#
# GOAL is the budget for the whole page with SSH and VNC: 600 KB gzip (KB = 1000 bytes).
# The TLS module (dist/tls/, for home apps a LAN device serves over https itself; loaded only
# when such an app opens) is not part of that page: it is listed and held to TLS_CEILING apart.
# The page is not there yet (docs/ssh.md "Size"), so CI (scripts/test.sh) holds it at CEILING,
# today's size plus a little: it may not grow (it grew by 11 KB for opt-level 3 on the tunnel's
# hot crates, +19 % browser download, by 0.45 KB for reads that hand a body on without a
# copy, -3.5 % of the page's busy time in a download, by 0.8 KB for an app's early answer
# to an upload: a 413 reaches the page instead of a write that waited forever on the reset,
# by 3.2 KB for pages and files a device sends gzipped whatever it is asked, as embedded
# devices do: decoded through the browser's DecompressionStream instead of shown as bytes, and
# by 1.7 KB for home apps that work as at home: the shim under a nonce-only script policy
# (Nextcloud), no cookies with another site's form posts, the sign-in on WebSocket upgrades,
# header values as byte strings, bodies up to 16 MiB sent whole, the cache's rules; 0.1 KB more
# when the cross-site cookie rule moved into the header mapping where the cookies are added,
# and by 2.8 KB for app-name certificates ordered only when an enrolled device asks:
# prepareApp, the demand and its answer, a redirect's demand; strangers' handshakes no longer
# spend the relay's certificate limits; 0.4 KB more for links, window.open and navigations to
# other apps asking for their names' certificates through the worker; 0.5 KB more for opening a
# new app only once its certificate is there, and saying when the certificate authority refused
# its name; and by 1.4 KB for limits on what app pages and LAN answers make the launcher hold:
# WebSocket bufferedAmount and its 32 MiB, a 256 MiB budget over all app pages, 256 ports,
# interim heads within the head limit, cookie jars of 128 KiB, Host without :443), and by
# 3.3 KB for SSH and VNC sessions that bad input or a silent server cannot break or leak: the
# login's time limit and AbortSignal, ports checked as whole numbers (pins per real port), the
# connection reset when a server keeps it open, desktops replaced without a hidden one left,
# pins that could not be saved refused; WebKit offered apps in the frame only), and by 0.16 KB
# for `cols` and `rows` of hometun.ssh checked as whole numbers 1-10000 (invalid-argument instead
# of a silent 80x24), net of the 0.14 KB the patched russh-util's saturating Instant saved, and
# by 22 bytes for the step a page that is still loading is in (wasm, device), which tests print,
# and by 0.7 KB for an enrolment that counts once the browser holds the device: its writes tried
# again, and a page that says how to keep a device the browser would not store; 12 bytes more for
# an invite link opened while the page is still starting, kept for when it can enrol, and by
# 0.19 KB for opens of the browser's storage under a time limit, tried three times, so a storage
# that never answers is said instead of a page that says "loading" for good, and by 0.27 KB for
# an app's worker that stays running while its exchanges do (a download longer than a minute in
# Firefox, five in Chromium): no event held past four minutes, its pages asked for a message,
# and by 1.0 KB for fetch uploads of 1 MiB or more over a port of the page's own (Chromium ends
# a worker's fetch event after five minutes, before a long upload's answer), and by 2.5 KB for
# XMLHttpRequest and form uploads of 1 MiB or more over such a port too (XHR's states, answers
# and events in the standard's order, upload progress Chromium gave none of, forms encoded as
# browsers do, a silent port pinged), and by 0.3 KB for stream chunks carried in the last
# WebSocket message's buffer instead of a fresh one (+11 % browser download), and by 1.2 KB for
# a tunnel that comes back with the network or when the page is shown again (a waiting link tries
# at once, an up one pings the relay and reconnects unless it answers within 5 s, as it does when
# packets it sent got nothing back for 2 s; an "offline" error while the browser says there is no
# network), and by 1.9 KB for the page as an app on a phone's home screen (a web app manifest, an
# icon that fills the shapes Android cuts and the 180 px PNG an iPhone wants; fetched when the
# page is installed, not when it loads), and by 0.9 KB for what a connection that died without a
# word took with it, sent again as soon as the next is up (the netstack keeps its newest packets
# until the relay answers), and by 0.4 KB for apps' text crossing the tunnel gzipped (asked for
# where the browser can undo it; a third of the bytes on Home Assistant's first visit) and kept
# in the app's cache once decoded (its length counted as it is stored), and by 0.2 KB for a
# connection whose peer stopped taking what was sent, told apart from one that never answered,
# and by 1.1 KB for an app's word on who may frame it kept on its app origin (another app's page
# cannot frame a router's settings that said no), handles that are never numbered twice, and a
# netstack built anew when the relay's MTU changed, and by 0.5 KB for ports capped per app (a
# page asking for ports without end closes its own) and the Open tool's snapshots and the TCP
# tool's text held to a size (a LAN host that sends without end cannot take the launcher down),
# and by 1.3 KB for what hostile LAN servers could make the page hold (SSH channels the server
# opens refused, SSH writes a server does not take capped, VNC replies held back by TCP and
# unpacked sizes capped), ports counted per LAN host with the idle least used closed first, a
# Digest sign-in never turned into Basic, and forms posted with a field named "action", and by
# 0.4 KB for the storage's time limit on reads and writes and to match a fresh clone's build
# (906,033 bytes on 2026-12-06, 0.3 KB above a long-used checkout's: CI builds from a fresh one),
# and by 0.2 KB for a port just opened never closed to make room, a storage write given up
# aborted, and a snapshot's budget set aside before each read, and by 0.4 KB for SSH's bound on
# writes waiting for a server moved where a native test shows it (a refused write now says
# `not-reading`), and by 1.2 KB for one launcher tab running the tunnel (a second one waits and
# takes over when the first closes, Connect moves it; the app pages follow it), and by 1.3 KB for
# cookies of every path kept for the pages of that path, WebSocket frames as large as a message,
# tries to connect that go on (longer apart) for as long as the page is open, an app page told
# at once why the launcher cannot connect, and a relay that could not write its state telling
# devices to try again, and by 2.4 KB for the shim after comments and an XML prolog, cookie
# dates read as browsers read them, HTTP/1.0 answers, redirects of large uploads followed, a
# request held whole written while its answer is looked for (a device's early 413 shown),
# sockets that fail after a minute without the tunnel, and the launcher tabs' hand-over made
# safe (one steal at a time, jars read again, a waiting retry replaced), and by 0.3 KB for a
# name two hosts announce opened by address, a hostile desktop's picture refused with a reason,
# and comments that end in `--!>` before a doctype; then down by 0.3 KB as the app code reused
# what it had (one Connection-list parser, one cookie order); then up by 0.3 KB for download
# links taken through the app's worker (Chromium saved the boot page), an app in the launcher's
# frame allowed full screen and copy buttons, old devices' sloppy answer heads read as browsers
# read them, forms posted whole up to 64 MiB, an app's own post moved by a 307 kept its own, a
# cookie a script wrote waited for by its next request, and download links that lead on or sit
# on pages that allow no frames; then up by 0.8 KB for a kept copy's headers that a 304 does not
# replace, a replaced port closed, a cookie no launcher could take given up, a failed download
# shown in the browser's list, and cookie Max-Age read as browsers read it, and by 0.1 KB for an
# app's WebSocket that no longer stays connecting forever, and by 0.4 KB for requests a page gives
# up on told to the worker (six of them held every connection to the app), and by 0.1 KB for the
# app's copies trimmed when the origin's storage grows past 256 MiB, and by 0.2 KB for aborts
# that come before their request's exchange, and an XHR opened again while it waits, and by
# 2.5 KB for a phone's shell and desktop: the row of keys its keyboard lacks (Esc, Tab, Ctrl,
# Alt, arrows) under the terminal and the desktop, and the desktop's Keyboard button, and by
# 0.8 KB for busy app ports whose holder stopped answering closed by the launcher (their LAN
# connections were held for good in browsers that fire no port close), and by 0.5 KB for the
# phone's typing made right for real keyboards (composed words, the cursor moved, xterm.js's
# own sequences, nothing offered to a view-only desktop), and by 0.4 KB for the desktop's 1:1
# view on a phone and a cookie port that follows the jar again after a launcher reload, and by
# 0.7 KB for navigations and form posts held for a cookie a script just wrote, and cookies
# written while no launcher runs kept until one does, and by 1 KB for a phone's terminal and
# desktop kept above its keyboard with their row of keys (in the page and in the desktop's
# bundle, which carries its own copy of the row), and by 0.1 KB for a shared worker that asks
# its other pages for ports when the newest one closed, and by 0.7 KB for one LAN host's share of
# what app pages may make the launcher hold, and the device's storage letting go of what it had
# under way when the page is left (WebKit kept it held from its back-forward cache) and making
# it again if the page comes back.
# Lower CEILING whenever the page shrinks.
set -euo pipefail
GOAL=600000
CEILING=921200
TLS_CEILING=205000
dist="$(cd "$(dirname "$0")/../www" && pwd)/dist"
case "${1:-}" in
  "") budget=$CEILING name=ceiling ;;
  --goal) budget=$GOAL name=goal ;;
  *[!0-9]*) echo "usage: $0 [--goal | BYTES]" >&2; exit 2 ;;
  *) budget=$1 name=budget ;;
esac
[ -f "$dist/index.html" ] || { echo "page-size: $dist is not built (scripts/build-page.sh)" >&2; exit 2; }
total=0
tls=0
# What a browser that takes brotli downloads: each file's NAME.br where the build made one, else
# its NAME.gz, else the file.
sent=0
printf '%10s %10s  %s\n' raw gzip file
while IFS= read -r f; do
  raw=$(stat -c %s "$f")
  gz=$(gzip -9 -c "$f" | wc -c)
  case "${f#"$dist"/}" in
    tls/*) tls=$((tls + gz)) ;;
    *)
      total=$((total + gz))
      form="$f"
      for c in "$f.gz" "$f.br"; do [ -f "$c" ] && form="$c"; done
      sent=$((sent + $(stat -c %s "$form")))
      ;;
  esac
  printf '%10d %10d  %s\n' "$raw" "$gz" "${f#"$dist"/}"
done < <(find "$dist" -type f ! -name '*.gz' ! -name '*.br' | LC_ALL=C sort)
printf '%10s %10d  total gzip of the page with SSH and VNC (%s %d; goal %d)\n' '' "$total" "$name" "$budget" "$GOAL"
printf '%10s %10d  the same as a browser that takes brotli gets it (the relay sends the NAME.br forms)\n' '' "$sent"
printf '%10s %10d  the TLS module for https:// home apps, loaded apart (ceiling %d)\n' '' "$tls" "$TLS_CEILING"
if [ "$tls" -gt "$TLS_CEILING" ]; then
  echo "page-size: the TLS module is $tls bytes gzip, over its ceiling of $TLS_CEILING" >&2
  exit 1
fi
if [ "$total" -gt "$budget" ]; then
  echo "page-size: the page is $total bytes gzip, over the $name of $budget" >&2
  exit 1
fi
if [ "$total" -gt "$GOAL" ]; then
  echo "page-size: within the $name, but $((total - GOAL)) bytes over the ${GOAL}-byte goal" >&2
fi
