export function validate(input) {
  let proposal;
  try {
    proposal = JSON.parse(input);
  } catch (e) {
    return { valid: false, description: `not JSON: ${e.message}` };
  }
  if (!Array.isArray(proposal.actions) || proposal.actions.length === 0) {
    return { valid: false, description: "a proposal needs a non-empty actions list" };
  }
  const problems = [];
  proposal.actions.forEach((action, i) => {
    const known = actions.get(action.name);
    if (!known) {
      problems.push(`actions[${i}]: unknown action ${JSON.stringify(action.name)}`);
      return;
    }
    try {
      known.validate(action.args ?? {});
    } catch (e) {
      problems.push(`actions[${i}] (${action.name}): ${e.message}`);
    }
  });
  return problems.length === 0
    ? { valid: true, description: "OK" }
    : { valid: false, description: problems.join("; ") };
}
