/** A backup answers an AppendEntries that brought new entries once: when they are durable. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { type AppendEntries, type Message, Raft } from "../../src/consensus/index.ts";

function pair() {
  const config = ["p", "q"];
  const make = (id: string, r: number) =>
    new Raft({
      id,
      random: () => r,
      electionTicksMin: 10,
      electionTicksMax: 20,
      log: { start: { seqno: 0, view: 0, config }, entries: [] },
    });
  const p = make("p", 0);
  const q = make("q", 0.9);
  // p campaigns; messages flow until it leads.
  for (let i = 0; i < 10; i++) p.tick();
  for (let round = 0; round < 20 && p.role !== "primary"; round++) exchange(p, q);
  assert.equal(p.role, "primary");
  exchange(p, q);
  return { p, q };
}

/** Delivers what each has to say to the other, persisting everything at once. */
function exchange(p: Raft, q: Raft): void {
  for (const [from, to] of [
    [p, q],
    [q, p],
  ] as const) {
    const ready = from.ready();
    from.advance(ready);
    const last = ready.entriesToPersist.at(-1);
    if (last) from.persisted(last.seqno, last.view);
    for (const { message } of ready.messages) to.step(message);
  }
}

const answers = (messages: Array<{ message: Message }>) =>
  messages.map(({ message }) => message).filter((m) => m.type === "append_entries_response");

test("new entries are answered when durable, not also at once; nothing new is answered at once", () => {
  const { p, q } = pair();
  const view = p.view;
  const start = p.lastSeqno;
  assert.ok(p.propose([{ seqno: start + 1, view, isSignature: true, data: new Uint8Array([1]) }]));
  const fromP = p.ready();
  p.advance(fromP);
  const append = fromP.messages.map(({ message }) => message).find((m) => m.type === "append_entries");
  assert.ok(append, "the primary sends the entry");
  q.step(append);
  const received = q.ready();
  q.advance(received);
  assert.equal(received.entriesToPersist.length, 1);
  assert.deepEqual(answers(received.messages), [], "no answer before the entry is durable");
  q.persisted(start + 1, view);
  const durable = q.ready();
  q.advance(durable);
  const [ack, ...more] = answers(durable.messages);
  assert.equal(more.length, 0);
  assert.equal(ack?.type === "append_entries_response" && ack.success, true);
  assert.equal(ack?.type === "append_entries_response" && ack.durableSeqno, start + 1);
  // The same message again brings nothing new: answered at once.
  q.step(append as AppendEntries);
  const again = q.ready();
  q.advance(again);
  assert.equal(answers(again.messages).length, 1);
});
