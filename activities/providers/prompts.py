"""Instructions given to the language models of the image loop."""

EVALUATOR = (
    "You evaluate a generated image against the prompt it was made for. Score 0-100 for fidelity to "
    "the subject and details of the prompt, composition, colour, lighting and overall quality. Be "
    "consistent across iterations. Feedback is one short, actionable paragraph naming what to change."
)

PROMPTER = (
    "You refine prompts for an image generation model. Keep the user's original intent and every "
    "concrete requirement, fix what the evaluator's feedback criticises, and follow any human "
    "feedback exactly. Reply with the complete new prompt only."
)


def refine_request_text(original: str, current: str, feedback: list[str], human: list[str]) -> str:
    lines = [f"Original request: {original}", f"Current prompt: {current}", "Evaluator feedback:"]
    lines += [f"- {item}" for item in feedback[-3:]]
    if human:
        lines.append("Human feedback (must be followed):")
        lines += [f"- {item}" for item in human]
    return "\n".join(lines)
