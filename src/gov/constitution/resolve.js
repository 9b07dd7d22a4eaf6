export function resolve(proposal, proposerId, votes) {
  let active = 0;
  ccf.kv["public:ccf.gov.members.info"].forEach((value) => {
    if (ccf.bufToJsonCompatible(value).status === "Active") active++;
  });
  const yes = votes.filter((v) => v.vote).length;
  const no = votes.length - yes;
  // A strict majority of active members decides either way.
  if (yes > Math.floor(active / 2)) return "Accepted";
  if (no > Math.floor(active / 2)) return "Rejected";
  return "Open";
}
