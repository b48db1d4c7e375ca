-- Questionnaire 2026-11.1: the lessons-learned meeting of NIST SP 800-61 §3.4.1
-- and SANS "Lessons Learned", one topic per block. Versions are immutable: a
-- change is a new version in a new migration.
INSERT INTO questionnaires (version, questions) VALUES ('2026-11.1', $json$[
  {"id": "what_happened.account", "topic": "what_happened", "kind": "text",
   "prompt": "In your own words: what happened, and when? Include what you saw and did, with times where you know them."},
  {"id": "what_happened.timeline_accurate", "topic": "what_happened", "kind": "yes_no",
   "prompt": "Is the recorded incident timeline accurate and complete?"},
  {"id": "what_happened.timeline_corrections", "topic": "what_happened", "kind": "text",
   "prompt": "Which timeline entries need correcting or adding (time, who, what)?"},

  {"id": "team_performance.procedures_followed", "topic": "team_performance", "kind": "choice",
   "prompt": "Were the documented plans, playbooks, policies and procedures followed?",
   "choices": ["fully", "mostly", "partly", "not followed", "no documented procedure applied"]},
  {"id": "team_performance.procedures_adequate", "topic": "team_performance", "kind": "rating",
   "prompt": "How adequate were the plans, playbooks, policies and procedures for this incident? (1 = not at all, 5 = fully adequate)"},
  {"id": "team_performance.performance", "topic": "team_performance", "kind": "rating",
   "prompt": "How well did staff and management perform in dealing with the incident? (1 = poorly, 5 = very well)"},
  {"id": "team_performance.notes", "topic": "team_performance", "kind": "text",
   "prompt": "Where did the procedures help, and where were they missing, wrong or in the way?"},

  {"id": "business_information.prompt", "topic": "business_information", "kind": "yes_no",
   "prompt": "Did the business provide the information the response needed promptly?"},
  {"id": "business_information.needed_sooner", "topic": "business_information", "kind": "text",
   "prompt": "What information was needed sooner?"},
  {"id": "business_information.improve", "topic": "business_information", "kind": "text",
   "prompt": "How can the flow of information between the business and the response team improve?"},

  {"id": "containment_eradication.helped", "topic": "containment_eradication", "kind": "text",
   "prompt": "Which steps or actions helped containment, eradication or recovery?"},
  {"id": "containment_eradication.hindered", "topic": "containment_eradication", "kind": "text",
   "prompt": "Which steps or actions hindered containment, eradication or recovery, or might have?"},

  {"id": "do_differently.next_time", "topic": "do_differently", "kind": "text",
   "prompt": "What would staff and management do differently the next time a similar incident occurs?"},

  {"id": "information_sharing.adequate", "topic": "information_sharing", "kind": "yes_no",
   "prompt": "Was information shared with the other organisations that needed it (partners, customers, CERTs, ISACs, regulators, law enforcement)?"},
  {"id": "information_sharing.improve", "topic": "information_sharing", "kind": "text",
   "prompt": "How could information sharing with other organisations be improved?"},

  {"id": "preventive_measures.actions", "topic": "preventive_measures", "kind": "action_items",
   "prompt": "What corrective actions could prevent similar incidents in the future? One per line."},

  {"id": "precursors_indicators.watch", "topic": "precursors_indicators", "kind": "text",
   "prompt": "What precursors or indicators should be watched for to detect similar incidents earlier?"},

  {"id": "tools_resources.needed", "topic": "tools_resources", "kind": "action_items",
   "prompt": "What additional tools or resources are needed to detect, analyse and mitigate future incidents? One per line."},

  {"id": "training.needs", "topic": "training", "kind": "action_items",
   "prompt": "What training would have helped you or the team? One per line."},
  {"id": "training.junior_lessons", "topic": "training", "kind": "text",
   "prompt": "What should junior members of the team learn from this incident?"},

  {"id": "readiness_structure.readiness", "topic": "readiness_structure", "kind": "rating",
   "prompt": "How ready were we for this incident? (1 = not at all, 5 = fully prepared)"},
  {"id": "readiness_structure.team_structure", "topic": "readiness_structure", "kind": "text",
   "prompt": "Did the team structure, roles and escalation paths work? What should change?"}
]$json$::jsonb);
