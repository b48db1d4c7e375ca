-- Questionnaire 2026-12.1: 2026-11.1 plus conditional questions (show_when:
-- asked only when another answer has one of the values; the server enforces
-- the same rule and a hidden question is never required) and the questions
-- 2026-11.1 lacked: which plans, playbooks, policies or procedures to update,
-- the cost in effort and money from each participant's view, and recurrence.
-- Reviews opened with 2026-11.1 keep it; new reviews open with this version.
INSERT INTO questionnaires (version, questions) VALUES ('2026-12.1', $json$[
  {"id": "what_happened.account", "topic": "what_happened", "kind": "text", "prompt": "In your own words: what happened, and when? Include what you saw and did, with times where you know them."},
  {"id": "what_happened.timeline_accurate", "topic": "what_happened", "kind": "yes_no", "prompt": "Is the recorded incident timeline accurate and complete?"},
  {"id": "what_happened.timeline_corrections", "topic": "what_happened", "kind": "text", "prompt": "Which timeline entries need correcting or adding (time, who, what)?", "show_when": {"question_id": "what_happened.timeline_accurate", "values": ["no"]}},
  {"id": "team_performance.procedures_followed", "topic": "team_performance", "kind": "choice", "prompt": "Were the documented plans, playbooks, policies and procedures followed?", "choices": ["fully", "mostly", "partly", "not followed", "no documented procedure applied"]},
  {"id": "team_performance.steps_not_followed", "topic": "team_performance", "kind": "text", "prompt": "Which steps were not followed, and why?", "show_when": {"question_id": "team_performance.procedures_followed", "values": ["partly", "not followed"]}},
  {"id": "team_performance.procedures_adequate", "topic": "team_performance", "kind": "rating", "prompt": "How adequate were the plans, playbooks, policies and procedures for this incident? (1 = not at all, 5 = fully adequate)"},
  {"id": "team_performance.performance", "topic": "team_performance", "kind": "rating", "prompt": "How well did staff and management perform in dealing with the incident? (1 = poorly, 5 = very well)"},
  {"id": "team_performance.notes", "topic": "team_performance", "kind": "text", "prompt": "Where did the procedures help, and where were they missing, wrong or in the way?"},
  {"id": "team_performance.update_needed", "topic": "team_performance", "kind": "yes_no", "prompt": "Should plans, playbooks, policies or procedures be updated after this incident?"},
  {"id": "team_performance.update_which", "topic": "team_performance", "kind": "action_items", "prompt": "Which plans, playbooks, policies or procedures should be updated, and how? One per line.", "show_when": {"question_id": "team_performance.update_needed", "values": ["yes"]}},
  {"id": "business_information.prompt", "topic": "business_information", "kind": "yes_no", "prompt": "Did the business provide the information the response needed promptly?"},
  {"id": "business_information.needed_sooner", "topic": "business_information", "kind": "text", "prompt": "What information was needed sooner?", "show_when": {"question_id": "business_information.prompt", "values": ["no"]}},
  {"id": "business_information.improve", "topic": "business_information", "kind": "text", "prompt": "How can the flow of information between the business and the response team improve?"},
  {"id": "containment_eradication.helped", "topic": "containment_eradication", "kind": "text", "prompt": "Which steps or actions helped containment, eradication or recovery?"},
  {"id": "containment_eradication.hindered", "topic": "containment_eradication", "kind": "text", "prompt": "Which steps or actions hindered containment, eradication or recovery, or might have?"},
  {"id": "cost.effort", "topic": "cost", "kind": "text", "prompt": "From your view, what did the incident cost in effort (people, hours, work set aside)?"},
  {"id": "cost.money", "topic": "cost", "kind": "text", "prompt": "From your view, what did it cost in money (lost revenue, overtime, outside help, penalties), and how sure are you?"},
  {"id": "recurrence.before", "topic": "recurrence", "kind": "choice", "prompt": "Had anything like this incident happened before?", "choices": ["yes, the same", "something similar", "no", "don't know"]},
  {"id": "recurrence.details", "topic": "recurrence", "kind": "text", "prompt": "When was that, and why did what was learned then not prevent this one?", "show_when": {"question_id": "recurrence.before", "values": ["yes, the same", "something similar"]}},
  {"id": "do_differently.next_time", "topic": "do_differently", "kind": "text", "prompt": "What would staff and management do differently the next time a similar incident occurs?"},
  {"id": "information_sharing.adequate", "topic": "information_sharing", "kind": "yes_no", "prompt": "Was information shared with the other organisations that needed it (partners, customers, CERTs, ISACs, regulators, law enforcement)?"},
  {"id": "information_sharing.improve", "topic": "information_sharing", "kind": "text", "prompt": "How could information sharing with other organisations be improved?"},
  {"id": "preventive_measures.actions", "topic": "preventive_measures", "kind": "action_items", "prompt": "What corrective actions could prevent similar incidents in the future? One per line."},
  {"id": "precursors_indicators.watch", "topic": "precursors_indicators", "kind": "text", "prompt": "What precursors or indicators should be watched for to detect similar incidents earlier?"},
  {"id": "tools_resources.needed", "topic": "tools_resources", "kind": "action_items", "prompt": "What additional tools or resources are needed to detect, analyse and mitigate future incidents? One per line."},
  {"id": "training.needs", "topic": "training", "kind": "action_items", "prompt": "What training would have helped you or the team? One per line."},
  {"id": "training.junior_lessons", "topic": "training", "kind": "text", "prompt": "What should junior members of the team learn from this incident?"},
  {"id": "readiness_structure.readiness", "topic": "readiness_structure", "kind": "rating", "prompt": "How ready were we for this incident? (1 = not at all, 5 = fully prepared)"},
  {"id": "readiness_structure.team_structure", "topic": "readiness_structure", "kind": "text", "prompt": "Did the team structure, roles and escalation paths work? What should change?"}
]$json$::jsonb);
