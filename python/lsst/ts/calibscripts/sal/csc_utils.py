"""Summary-state transitions of a CSC, and commanding a CSC into a state."""

from __future__ import annotations

__all__ = ["get_expected_summary_states", "make_state_transition_dict", "set_summary_state"]

from .enums import State
from .remote import Remote

StateTransitionDict = dict[tuple[State, State], list[tuple[str, State]]]

#: States reachable by commands, in order: each command moves one step.
_ORDERED_STATES = (State.OFFLINE, State.STANDBY, State.DISABLED, State.ENABLED)
_STEP_COMMANDS = {
    (State.OFFLINE, State.STANDBY): "enterControl",
    (State.STANDBY, State.DISABLED): "start",
    (State.DISABLED, State.ENABLED): "enable",
    (State.ENABLED, State.DISABLED): "disable",
    (State.DISABLED, State.STANDBY): "standby",
    (State.STANDBY, State.OFFLINE): "exitControl",
}


def make_state_transition_dict() -> StateTransitionDict:
    """Return the commands that take a CSC from one summary state to another.

    Returns
    -------
    transitions : `dict`
        Key ``(initial_state, final_state)``; value a list of
        ``(command name, state after the command)``, empty if the states
        are the same. From FAULT the first command is always ``standby``.
    """
    transitions: StateTransitionDict = {}
    for i, begin in enumerate(_ORDERED_STATES):
        for j, end in enumerate(_ORDERED_STATES):
            step = 1 if j > i else -1
            path = []
            for k in range(i, j, step):
                after = _ORDERED_STATES[k + step]
                path.append((_STEP_COMMANDS[_ORDERED_STATES[k], after], after))
            transitions[begin, end] = path
    for end in _ORDERED_STATES:
        tail = [] if end == State.STANDBY else transitions[State.STANDBY, end]
        transitions[State.FAULT, end] = [("standby", State.STANDBY), *tail]
    return transitions


_TRANSITIONS = make_state_transition_dict()


def get_expected_summary_states(initial_state: State | int, final_state: State | int) -> list[State]:
    """Return the summary states a CSC goes through from one state to another, both included."""
    initial_state = State(initial_state)
    return [initial_state] + [state for _, state in _TRANSITIONS[initial_state, State(final_state)]]


async def set_summary_state(
    remote: Remote, state: State | int, override: str | None = "", timeout: float = 30
) -> list[State]:
    """Command a CSC into a summary state, one transition command at a time.

    Parameters
    ----------
    remote : `Remote`
        Remote of the CSC.
    state : `State` or `int`
        Desired state (not FAULT).
    override : `str` or None, optional
        ``configurationOverride`` of the ``start`` command, if one is sent.
    timeout : `float`, optional
        Time limit (s) for reading the current state and for each command.

    Returns
    -------
    states : `list` [`State`]
        The state at the start, then the state after each command.

    Raises
    ------
    ValueError
        If ``state`` is FAULT.
    RuntimeError
        If the current state cannot be read, or a command fails (the message
        names the command and the initial state).
    """
    state = State(state)
    if state == State.FAULT:
        raise ValueError("Cannot go into FAULT state using state transition commands")
    try:
        data = await remote.evt_summaryState.aget(timeout=timeout)
    except TimeoutError:
        raise RuntimeError(f"Cannot get summaryState from {remote.salinfo.name}") from None
    current = State(data.summaryState)
    states = [current]
    if current == state:
        return states
    old_override = remote.cmd_start.data.configurationOverride
    try:
        remote.cmd_start.data.configurationOverride = override or ""
        for command, after in _TRANSITIONS[current, state]:
            try:
                await getattr(remote, f"cmd_{command}").start(timeout=timeout)
            except Exception as e:
                raise RuntimeError(f"Error on cmd=cmd_{command}, initial_state={current}: {e}") from e
            states.append(after)
    finally:
        remote.cmd_start.data.configurationOverride = old_override
    return states
