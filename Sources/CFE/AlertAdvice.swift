/// What the operator should do about each health condition (docs/alerts.md), sent as
/// the `description` annotation of the alerts `cfe alertmanager` posts.
enum AlertAdvice {
    static func description(for condition: String) -> String {
        switch condition {
        case "weight_collapse":
            "The aggregator's weights collapsed; fallback scores are published. Check the label pipeline (inverted or shifted labels, one class only) and the classifiers' outputs; `cfe rollback` restores the last healthy model."
        case "score_collapse":
            "Every instance gets about the same score; fallback scores are published. Check whether the classifiers' inputs changed (all reporting constants?) and the weights (`cfe status`)."
        case "weight_drift":
            "The weight sum fell at every recent update, the early sign of a collapse. Look at the class balance of recent labels (class_counts) and the weights (`cfe watch`)."
        case "quality_regression":
            "The live model scores worse than the simple average. Check for drift in one classifier (its weight), label delays, or a changed positive rate."
        case "classifier_silent":
            "A classifier stopped reporting; its values are reconstructed from the others. Check that model's service; this resolves when it reports again."
        case "label_outage":
            "No positive labels for far longer than the positive rate predicts. Check the label pipeline for lost positives (chargebacks, fraud reports)."
        case "calibration_drift":
            "The published probabilities no longer match the labelled outcomes (the positive rate or the score's meaning changed). Thresholds set on the probability are off until the calibrator follows; check `cfe status` for the positive rate and the operating points."
        case "classifier_drift":
            "One classifier's outputs moved away from its reference distribution, before any label says whether it got worse. Check that model's service (a new version, a broken feature, a constant output); after a deliberate change, `cfe pin-reference` makes its new outputs the reference."
        case "score_drift":
            "The published scores, or the positive rate they predict, changed faster than learning moves them: the traffic or the classifiers changed. Look for a classifier_drift alert, a fraud wave (a risen predicted positive rate), or an upstream incident; the operating points' thresholds flag a different share of traffic meanwhile."
        case "estimated_quality_drop":
            "The PR-AUC expected of recent traffic from its calibrated probabilities fell well below that of the traffic before it, weeks before labels can confirm it. Look for classifier_drift (a classifier that degraded) and score_drift; compare the estimate on the labelled window with the realised PR-AUC (`cfe status`) to judge how far to trust it."
        default:
            "See the cfensembled alerts documentation for this condition."
        }
    }
}
