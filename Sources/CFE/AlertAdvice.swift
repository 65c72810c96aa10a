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
        default:
            "See the cfensembled alerts documentation for this condition."
        }
    }
}
