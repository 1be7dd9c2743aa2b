"""Human handoff (issue #5): escalation policy, queue, agent accounts, canned replies,
compensation and CSAT. Services here are framework-free; the console and the Rasa actions
call them."""
